"""Redis faults: a restart (append-only file on) loses no job or model; while Redis is down
the API answers 503 and it recovers by itself when Redis is back."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from cli.local_redis import redis_binary
from common.api_keys import ApiKeys
from common.artifacts import FolderStore
from common.keys import Keys
from tests.app.test_api import assert_error, support, wait_for
from tests.service_fixtures import eventually, image_bytes

pytestmark = pytest.mark.redis


class OwnRedis:
    """A redis-server of this test's own, on a fixed port, persisting with AOF in ``folder``."""

    def __init__(self, folder: Path, *options: str) -> None:
        self.folder = folder
        self.options = options
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # no clean shutdown: only the append-only file saves the data
        self.process.wait()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


def test_a_restart_between_enqueue_and_completion_loses_nothing(own_redis, settings, start_worker):
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    with TestClient(create_app(settings)) as client:
        files, data = support(classes=2, shots=2)
        created = client.post("/v1/adaptations", files=files, data={**data, "steps": "3"}).json()
        own_redis.kill()
        assert_error(client.get(f"/v1/jobs/{created['job_id']}"), 503, "storage_unavailable")
        assert client.get("/readyz").status_code == 503
        own_redis.start()
        assert client.get(f"/v1/jobs/{created['job_id']}").json()["state"] == "queued"
        start_worker(settings)
        assert wait_for(client, created["job_id"])["state"] == "succeeded"
        own_redis.kill()  # after completion too: the model survives
        own_redis.start()
        model = client.get(f"/v1/models/{created['model_id']}").json()
        assert model["state"] == "ready"
        query = [("images", ("q.png", image_bytes(0, 7), "image/png"))]
        predicted = client.post(f"/v1/models/{created['model_id']}/predictions", files=query)
        assert predicted.status_code == 200, predicted.text
        again = client.post("/v1/adaptations", files=files, data={**data, "steps": "3"}).json()
        assert wait_for(client, again["job_id"])["state"] == "succeeded"  # the worker rode it out


def test_redis_down_answers_503_with_retry_after_and_recovers(own_redis, settings):
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/models").status_code == 200
        own_redis.kill()
        down = client.get("/v1/models")
        assert_error(down, 503, "storage_unavailable")
        assert down.headers["Retry-After"] == "5"
        files, data = support()
        assert_error(
            client.post("/v1/adaptations", files=files, data=data), 503, "storage_unavailable"
        )
        own_redis.start()
        assert client.get("/v1/models").json()["total"] == 0  # nothing half-written
        assert client.post("/v1/adaptations", files=files, data=data).status_code == 202


def test_a_full_redis_answers_507_and_stores_nothing_half(tmp_path, settings):
    full = OwnRedis(tmp_path, "--maxmemory-policy", "noeviction")
    full.start()
    try:
        artifacts = tmp_path / "artifacts"
        settings = settings.model_copy(
            update={"redis_url": full.url, "artifacts_url": str(artifacts)}
        )
        with TestClient(create_app(settings)) as client:
            files, data = support(classes=4, shots=2)
            assert client.post("/v1/adaptations", files=files, data=data).status_code == 202
            filled = redis.Redis.from_url(full.url)  # full now: below what it holds
            filled.config_set("maxmemory", filled.info("memory")["used_memory"] // 2)
            refused = client.post("/v1/adaptations", files=files, data=data)
            assert_error(refused, 507, "storage_full")
            assert refused.headers["Retry-After"] == "60"
            assert client.get("/v1/models").json()["total"] == 1  # reads still work
        inputs = list(FolderStore(artifacts).list("jobs/"))
        assert len(inputs) == 1  # the accepted job's: the refused one's input was removed
    finally:
        full.kill()


def make_full(client: redis.Redis) -> None:
    """Write filler, big then small, until Redis refuses even one byte three times in a row
    (maxmemory reached). Its own buffers move a little: tests call this before each check."""

    def refused() -> bool:
        try:
            client.set(f"filler:{uuid.uuid4().hex}", b"x")
        except redis.exceptions.OutOfMemoryError:
            return True
        return False

    for _ in range(100):
        for size in (200_000, 1000, 1):
            with contextlib.suppress(redis.exceptions.OutOfMemoryError):
                while True:
                    client.set(f"filler:{uuid.uuid4().hex}", b"x" * size)
        if refused() and refused() and refused():
            return
    raise AssertionError("redis would not stay full")


def test_a_full_redis_still_serves_reads_predictions_cancel_delete_and_workers_live(
    tmp_path, settings, start_worker, caplog
):
    full = OwnRedis(tmp_path, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
    full.start()
    try:
        settings = settings.model_copy(update={"redis_url": full.url, "auth": "keys"})
        store = redis.Redis.from_url(full.url)
        _, token = ApiKeys(store, Keys(settings.key_prefix)).create("t1")
        auth = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(settings), headers=auth) as client:
            files, data = support(classes=2, shots=2)
            ready = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"})
            first = start_worker(settings, "w-before")
            assert wait_for(client, ready.json()["job_id"], headers=auth)["state"] == "succeeded"
            first.stop.set()
            eventually(lambda: first._halted.is_set(), "the first worker stops")
            queued = client.post("/v1/adaptations", files=files, data=data).json()
            model_id = ready.json()["model_id"]

            make_full(store)
            caplog.set_level(logging.WARNING, logger="worker")
            late = start_worker(settings, "w-during")  # once, this one died at start-up
            # kept full while waiting: a key expiring meanwhile must not let its writes in
            eventually(
                lambda: make_full(store) or "redis full" in caplog.text, "the worker waits for room"
            )
            assert not late.stop.is_set()

            make_full(store)
            assert client.get("/v1/models").json()["total"] == 2
            assert client.get(f"/v1/models/{model_id}").json()["state"] == "ready"
            assert client.get(f"/v1/models/{model_id}/report").status_code == 200
            assert client.get(f"/v1/jobs/{queued['job_id']}").json()["state"] == "queued"
            query = [("images", ("q.png", image_bytes(0, 7), "image/png"))]
            make_full(store)
            predicted = client.post(f"/v1/models/{model_id}/predictions", files=query)
            assert predicted.status_code == 200, predicted.text  # the rate limit is not counted
            make_full(store)
            refused = client.post("/v1/adaptations", files=files, data=data)
            assert_error(refused, 507, "storage_full")

            make_full(store)
            cancelled = client.post(f"/v1/jobs/{queued['job_id']}/cancel")
            assert cancelled.status_code == 202, cancelled.text
            assert cancelled.json()["state"] == "cancelled"
            make_full(store)
            assert client.delete(f"/v1/models/{model_id}").status_code == 204
            assert [k for k in store.scan_iter(f"*{model_id}*")] == []
            store.delete(*store.keys("filler:*"))  # room again: the worker joins
            eventually(lambda: store.zscore(Keys(settings.key_prefix).workers, "w-during"), "beat")
    finally:
        full.kill()
