"""The per-tenant model cap through HTTP: the oldest finished model is evicted and says so."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support, wait_for
from tests.service_fixtures import image_bytes

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
        assert evicted["state"] == "evicted" and "cap of 2 models" in evicted["evicted_reason"]
        query = [("images", ("q.png", image_bytes(0, 3), "image/png"))]
        gone = client.post(f"/v1/models/{first['model_id']}/predictions", files=query)
        assert_error(gone, 410, "model_evicted")
        assert "cap of 2 models" in gone.json()["error"]["message"]
        assert not services.client.exists(services.keys.model_weights(first["model_id"]))
        listed = [m["model_id"] for m in client.get("/v1/models").json()["models"]]
        assert listed == [third["model_id"], second["model_id"]]
