"""Adapted weights and finished reports live in the artifact store, not in Redis: the record
names each blob and its SHA-256; delete removes them, the sweep collects what no record
names, a record of the version that kept weights in Redis still serves, and a store that is
down answers 503 ``artifacts_unavailable`` for predictions while the rest of the API
answers."""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.artifact_sweep import sweep_artifacts
from common.artifacts import FolderStore, open_store
from common.keys import JobKind
from common.settings import Settings
from tests.app.test_api import assert_error, support, wait_for
from tests.common.s3_server import start_s3_server
from tests.service_fixtures import eventually, image_bytes, new_model, service_stores

pytestmark = pytest.mark.redis


@pytest.fixture
def local_settings(settings: Settings, tmp_path) -> Settings:
    return settings.model_copy(update={"artifacts_url": str(tmp_path / "artifacts")})


def adapted_model(client: TestClient) -> str:
    files, data = support(classes=2, shots=2)
    created = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"})
    assert created.status_code == 202, created.text
    assert wait_for(client, created.json()["job_id"])["state"] == "succeeded"
    return created.json()["model_id"]


def predict(client: TestClient, model_id: str):
    files = [("images", ("q.png", image_bytes(1, 7), "image/png"))]
    return client.post(f"/v1/models/{model_id}/predictions", files=files)


def test_weights_are_a_checked_blob_and_redis_keeps_a_small_record(local_settings, start_worker):
    start_worker(local_settings)
    stores = service_stores(local_settings)
    with TestClient(create_app(local_settings)) as client:
        model_id = adapted_model(client)
        ref = stores.models.weights_ref(model_id)
        assert ref is not None and ref.name.startswith(f"models/{model_id}/")
        assert stores.client.get(stores.keys.model_weights(model_id)) is None
        assert predict(client, model_id).status_code == 200
        record = stores.models.get(model_id, "local")
        assert record is not None and record.report_blob is not None  # a report with figures
        assert stores.client.get(stores.keys.model_report(model_id)) is None
        assert client.get(f"/v1/models/{model_id}/report").json()["available"]
        held = int(stores.client.memory_usage(stores.keys.model(model_id)) or 0)
        assert held < 8 * 1024, held  # the record alone: no weights, no report
        assert client.delete(f"/v1/models/{model_id}").status_code in (200, 204)
    assert list(stores.models.artifacts.list(f"models/{model_id}/")) == []  # both blobs gone


def test_the_sweep_deletes_only_old_blobs_no_record_names(local_settings, start_worker):
    worker = start_worker(local_settings)
    stores = service_stores(local_settings)
    with TestClient(create_app(local_settings)) as client:
        model_id = adapted_model(client)
    worker.stop.set()  # the pending job below must stay pending
    eventually(worker._halted.is_set, "the worker stops")
    artifacts = stores.models.artifacts
    assert isinstance(artifacts, FolderStore)
    record = stores.models.get(model_id, "local")
    assert record is not None and record.weights and record.report_blob
    named, report = record.weights, record.report_blob
    orphan = artifacts.put("models/model_00000000000000000000", b"left by a dead worker")
    young = artifacts.put("models/model_11111111111111111111", b"its record is coming")
    pending = new_model("model_22222222222222222222", tenant="local")
    stores.jobs.create(
        JobKind.ADAPT, b"", tenant="local", base_model="b", settings="{}", new_model=pending
    )
    waiting = artifacts.put(f"models/{pending.id}", b"its job waits for a full Redis")
    odd = artifacts.root / "models" / "by hand~"
    odd.write_bytes(b"not a blob name")
    long_ago = time.time() - 7200
    for path in [artifacts.root / r.name for r in (named, report, orphan, waiting)] + [odd]:
        os.utime(path, (long_ago, long_ago))  # all old; only the orphan is no one's
    assert sweep_artifacts(stores, grace_s=3600) == 1
    left = {b.name for b in artifacts.list("models/")}
    assert left == {named.name, report.name, young.name, waiting.name} and odd.exists()


def test_a_record_that_kept_its_weights_in_redis_serves_and_moves_them(
    local_settings, start_worker
):
    """An upgrade: models adapted by the version that stored weights in Redis keep answering,
    and their first read moves the weights into the artifact store."""
    start_worker(local_settings)
    stores = service_stores(local_settings)
    with TestClient(create_app(local_settings)) as client:
        model_id = adapted_model(client)
        ref = stores.models.weights_ref(model_id)
        weights = stores.models.artifacts.get(ref)
        stores.client.set(stores.keys.model_weights(model_id), weights)  # the old layout
        stores.client.hdel(stores.keys.model(model_id), "weights")
        stores.models.artifacts.delete([ref.name])
        assert predict(client, model_id).status_code == 200
    # that first read moved them: the record names a blob, Redis holds them no more
    assert stores.models.weights_ref(model_id) == ref  # the same bytes, the same name
    assert stores.client.get(stores.keys.model_weights(model_id)) is None
    with TestClient(create_app(local_settings)) as client:  # a new process: read from the store
        assert predict(client, model_id).status_code == 200


def test_a_store_that_is_down_answers_503_for_weights_only(settings, start_worker, monkeypatch):
    server = start_s3_server()
    try:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        s3 = settings.model_copy(update={"artifacts_url": f"s3://{server.new_bucket()}"})
        start_worker(s3)
        with TestClient(create_app(s3)) as client:
            model_id = adapted_model(client)
            assert open_store(s3.artifacts_url).get(service_stores(s3).models.weights_ref(model_id))
            server.stop()
            with TestClient(create_app(s3)) as fresh:  # a new process: nothing cached
                assert_error(predict(fresh, model_id), 503, "artifacts_unavailable")
                assert fresh.get(f"/v1/models/{model_id}").status_code == 200
                assert fresh.get("/v1/jobs").status_code == 200
    finally:
        server.stop()


def test_a_blob_altered_behind_the_store_is_refused(local_settings, start_worker):
    start_worker(local_settings)
    stores = service_stores(local_settings)
    with TestClient(create_app(local_settings)) as client:
        model_id = adapted_model(client)
    ref = stores.models.weights_ref(model_id)
    path = stores.models.artifacts.root / ref.name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with TestClient(create_app(local_settings)) as client:
        assert_error(predict(client, model_id), 500, "artifact_corrupt")
