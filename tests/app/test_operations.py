"""Operations: request ids from the API into the worker's logs, /metrics, /readyz."""

from __future__ import annotations

import io
import json
import logging

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.metrics import ServiceCollector
from app.services import Services
from common.logs import JsonFormatter
from models.service import load_base_models
from tests.app.test_api import support, wait_for
from tests.service_fixtures import eventually, image_bytes

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def worker_log():
    """The worker's log lines as the JSON formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("worker")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_request_id_is_echoed_or_made():
    app_client = TestClient(create_app())  # no lifespan: /healthz needs nothing
    given = app_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = app_client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != app_client.get("/healthz").headers["X-Request-ID"]


def test_request_id_follows_the_job_into_the_worker(client, worker_thread, worker_log):
    files, data = support(classes=2, shots=1)
    created = client.post(
        "/v1/adaptations",
        files=files,
        data={**data, "steps": "2"},
        headers={"X-Request-ID": "trace-42"},
    )
    assert created.status_code == 202 and created.headers["X-Request-ID"] == "trace-42"
    job_id = created.json()["job_id"]
    assert wait_for(client, job_id)["state"] == "succeeded"

    def job_lines() -> list[dict]:
        lines = [json.loads(line) for line in worker_log.getvalue().splitlines()]
        return [line for line in lines if job_id in line["message"]]

    # the worker logs "succeeded" just after the state changes: await it
    eventually(lambda: any("succeeded" in line["message"] for line in job_lines()), "the log")
    assert any("started" in line["message"] for line in job_lines())
    assert all(line["request_id"] == "trace-42" for line in job_lines())


def test_metrics_count_requests_jobs_cache_and_workers(client, worker_thread):
    files, data = support(classes=2, shots=1)
    created = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"}).json()
    assert wait_for(client, created["job_id"])["state"] == "succeeded"
    query = [("images", ("q.png", image_bytes(0, 5), "image/png"))]
    for _ in range(2):
        predicted = client.post(f"/v1/models/{created['model_id']}/predictions", files=query)
        assert predicted.status_code == 200
    assert client.get("/v1/jobs/job_unknown").status_code == 404
    queue = client.app.state.services.queue  # the worker acks just after the state changes
    eventually(lambda: queue.depth_by_state() == (0, 0), "the job's entry acknowledged")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    route = "/v1/models/{model_id}/predictions"
    assert (
        found[
            (
                "fewshot_http_requests_total",
                (("method", "POST"), ("route", route), ("status", "200")),
            )
        ]
        == 2
    )
    assert (
        found[
            (
                "fewshot_http_requests_total",
                (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404")),
            )
        ]
        == 1
    )
    assert found[("fewshot_jobs_total", (("kind", "adapt"), ("state", "queued")))] == 1
    assert found[("fewshot_jobs_total", (("kind", "adapt"), ("state", "running")))] == 1
    assert found[("fewshot_jobs_total", (("kind", "adapt"), ("state", "succeeded")))] == 1
    assert found[("fewshot_job_duration_seconds_count", (("kind", "adapt"),))] == 1
    assert found[("fewshot_job_duration_seconds_sum", (("kind", "adapt"),))] > 0
    assert found[("fewshot_queue_jobs", (("state", "waiting"),))] == 0
    assert found[("fewshot_queue_jobs", (("state", "running"),))] == 0
    assert found[("fewshot_model_cache_misses_total", ())] == 1
    assert found[("fewshot_model_cache_hits_total", ())] == 1
    assert found[("fewshot_redis_up", ())] == 1
    beats = [key for key in found if key[0] == "fewshot_worker_heartbeat_timestamp_seconds"]
    assert beats == [
        ("fewshot_worker_heartbeat_timestamp_seconds", (("worker", worker_thread.name),))
    ]


def test_metrics_say_when_redis_is_down(settings):
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    services = Services(
        down, redis.Redis.from_url(down.redis_url), load_base_models(down.base_models_dir)
    )
    families = {family.name: family for family in ServiceCollector(services).collect()}
    assert families["fewshot_redis_up"].samples[0].value == 0
    assert "fewshot_queue_jobs" not in families  # nothing made up when Redis is unreachable
    assert families["fewshot_model_cache_models"].samples[0].value == 0
