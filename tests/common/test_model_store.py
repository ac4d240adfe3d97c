"""The model store through HTTP: the per-tenant cap evicts the oldest finished model and says
so; a deleted model leaves nothing in Redis, whatever its job does."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support, wait_for
from tests.service_fixtures import eventually, image_bytes, keys_under
from worker.registry import HANDLERS

pytestmark = pytest.mark.redis


@pytest.fixture
def capped(settings):
    return settings.model_copy(update={"max_models_per_tenant": 2})


def adapt(client: TestClient) -> dict:
    files, data = support(classes=2, shots=1)
    return client.post("/v1/adaptations", files=files, data={**data, "steps": "2"}).json()


def test_the_oldest_finished_model_makes_room_and_says_so(capped, start_worker):
    with TestClient(create_app(capped)) as client:
        first = adapt(client)
        second = adapt(client)
        assert_error(  # both pending: nothing can be evicted yet
            client.post("/v1/adaptations", files=support()[0], data=support()[1]),
            409,
            "model_cap_reached",
        )
        start_worker(capped)
        for created in (first, second):
            assert wait_for(client, created["job_id"])["state"] == "succeeded"
        services = client.app.state.services
        assert not services.client.exists(services.keys.job_input(first["job_id"]))  # freed
        third = adapt(client)
        assert wait_for(client, third["job_id"])["state"] == "succeeded"

        evicted = client.get(f"/v1/models/{first['model_id']}").json()
        assert evicted["state"] == "evicted" and "limit of models (2;" in evicted["evicted_reason"]
        query = [("images", ("q.png", image_bytes(0, 3), "image/png"))]
        gone = client.post(f"/v1/models/{first['model_id']}/predictions", files=query)
        assert_error(gone, 410, "model_evicted")
        assert "limit of models (2;" in gone.json()["error"]["message"]
        assert services.store.models.weights(first["model_id"]) is None
        listed = [m["model_id"] for m in client.get("/v1/models").json()["models"]]
        assert listed == [third["model_id"], second["model_id"]]


def model_keys(settings, model_id: str) -> list[bytes]:
    """Every Redis key that names the model."""
    return [
        k for k in keys_under(settings.redis_url, settings.key_prefix) if model_id.encode() in k
    ]


def test_deleting_a_pending_model_cancels_its_queued_job_and_leaves_nothing(settings):
    with TestClient(create_app(settings)) as client:
        created = adapt(client)
        model_id, job_id = created["model_id"], created["job_id"]
        assert model_keys(settings, model_id)  # the record and the index entry exist
        assert client.delete(f"/v1/models/{model_id}").status_code == 204
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
        assert model_keys(settings, model_id) == []
        services = client.app.state.services
        assert not services.client.exists(services.keys.job_input(job_id))
        assert client.get("/v1/models").json()["total"] == 0
        assert_error(client.get(f"/v1/models/{model_id}"), 404, "model_not_found")


@pytest.mark.parametrize("early", [True, False], ids=["publishing-early", "publishing-at-end"])
def test_a_job_whose_model_was_deleted_while_it_ran_writes_nothing_of_it(
    settings, start_worker, monkeypatch, early
):
    """The job misses the cancel (as when it could not be recorded): the transaction that
    would publish its model (after adapting, or at the end) still sees the model is gone, ends
    the job cancelled and writes nothing."""
    deleted = threading.Event()
    adapt_handler = HANDLERS["adapt"]

    def deaf_adapt(context, job, progress, publish_model):
        progress(0, 1)  # the job is running
        assert deleted.wait(60)
        deaf = lambda step, total, phase=None: None  # noqa: E731 - hears no cancel
        return adapt_handler(context, job, deaf, publish_model if early else None)

    monkeypatch.setitem(HANDLERS, "adapt", deaf_adapt)
    with TestClient(create_app(settings)) as client:
        start_worker(settings)
        created = adapt(client)
        model_id, job_id = created["model_id"], created["job_id"]
        eventually(lambda: client.get(f"/v1/jobs/{job_id}").json()["state"] == "running", "it runs")
        assert client.delete(f"/v1/models/{model_id}").status_code == 204
        deleted.set()
        job = wait_for(client, job_id)
        assert job["state"] == "cancelled" and job["error"]["code"] == "model_deleted", job
        assert model_keys(settings, model_id) == []
        assert client.get("/v1/models").json()["total"] == 0
