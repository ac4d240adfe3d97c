"""API keys, tenants and rate limits through HTTP, with a real Redis and worker."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.routes.predictions import ROBUSTNESS_COST
from common import rate_limits
from common.api_keys import ApiKeys, digest
from tests.app.test_api import assert_error, support, wait_for
from tests.service_fixtures import eventually, image_bytes

pytestmark = pytest.mark.redis


@pytest.fixture
def keyed(settings):
    return settings.model_copy(
        update={"auth": "keys", "rate_uploads_per_min": 3, "rate_predictions_per_min": 2}
    )


@pytest.fixture
def client(keyed):
    with TestClient(create_app(keyed)) as test_client:
        yield test_client


@pytest.fixture
def tokens(client):
    services = client.app.state.services
    api_keys = ApiKeys(services.client, services.keys)
    return {tenant: api_keys.create(tenant)[1] for tenant in ("acme", "globex")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_without_a_valid_key_get_401(client, tokens):
    for headers in ({}, bearer("fsk_nope_nope"), {"Authorization": f"Basic {tokens['acme']}"}):
        response = client.get("/v1/models", headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    files, data = support()
    assert_error(client.post("/v1/adaptations", files=files, data=data), 401, "unauthorized")
    assert client.get("/v1/models", headers=bearer(tokens["acme"])).status_code == 200
    for open_path in ("/healthz", "/metrics", "/openapi.json"):
        assert client.get(open_path).status_code == 200, open_path


def test_tenants_see_only_their_own_jobs_and_models(client, keyed, start_worker, tokens):
    start_worker(keyed)
    acme, globex = bearer(tokens["acme"]), bearer(tokens["globex"])
    files, data = support(classes=2, shots=1)
    created = client.post(
        "/v1/adaptations", files=files, data={**data, "steps": "2"}, headers=acme
    ).json()
    job_id, model_id = created["job_id"], created["model_id"]
    assert_error(client.get(f"/v1/jobs/{job_id}", headers=globex), 404, "job_not_found")
    assert_error(client.post(f"/v1/jobs/{job_id}/cancel", headers=globex), 404, "job_not_found")
    assert client.get(f"/v1/jobs/{job_id}", headers=acme).json()["state"] != "cancelled"
    job = wait_for(client, job_id, headers=acme)
    assert job["state"] == "succeeded"

    query = [("images", ("q.png", image_bytes(0, 5), "image/png"))]
    for method, path, kwargs in [
        ("get", f"/v1/models/{model_id}", {}),
        ("get", f"/v1/models/{model_id}/report", {}),
        ("post", f"/v1/models/{model_id}/predictions", {"files": query}),
        ("post", f"/v1/models/{model_id}/evaluations", {"files": files, "data": data}),
        ("delete", f"/v1/models/{model_id}", {}),
    ]:
        response = getattr(client, method)(path, headers=globex, **kwargs)
        assert_error(response, 404, "model_not_found")
    assert client.get("/v1/models", headers=globex).json() == {"models": [], "total": 0}
    assert client.get("/v1/jobs", headers=globex).json() == {"jobs": [], "total": 0}
    assert [j["job_id"] for j in client.get("/v1/jobs", headers=acme).json()["jobs"]] == [job_id]
    listed = client.get("/v1/models", headers=acme).json()
    assert [m["model_id"] for m in listed["models"]] == [model_id]
    predicted = client.post(f"/v1/models/{model_id}/predictions", files=query, headers=acme)
    assert predicted.status_code == 200
    assert client.delete(f"/v1/models/{model_id}", headers=acme).status_code == 204


def test_rate_limits_answer_429_with_retry_after_per_key(client, tokens, monkeypatch):
    # the windows' clock pinned 15 s into a minute: no request can straddle two windows
    monkeypatch.setattr(rate_limits, "clock", lambda: 6000.0 * 60 + 15)
    acme, globex = bearer(tokens["acme"]), bearer(tokens["globex"])
    bad = {"labels": ["a"]}  # refused after the limit check: each call counts
    answers = [
        client.post("/v1/adaptations", files=support()[0], data=bad, headers=acme) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert_error(answers[-1], 429, "rate_limited")
    assert answers[-1].headers["Retry-After"] == "45"  # until the window ends
    assert (
        answers[-1]
        .json()["error"]["message"]
        .startswith(
            "this key has used its 3 rate-limit units per minute for uploads (a plain request is 1 "
        )
    )
    other = client.post("/v1/adaptations", files=support()[0], data=bad, headers=globex)
    assert other.status_code == 422  # another key has its own budget
    query = [("images", ("q.png", image_bytes(0, 5), "image/png"))]
    predictions = [
        client.post("/v1/models/model_x/predictions", files=query, headers=acme) for _ in range(3)
    ]
    assert [p.status_code for p in predictions] == [404, 404, 429]
    assert client.get("/v1/models", headers=acme).status_code == 200  # reads are not limited


def test_a_revoked_key_stops_at_once(client, tokens):
    services = client.app.state.services
    api_keys = services.stores.api_keys
    (key,) = [key for key in api_keys.list() if key.tenant == "acme"]
    assert tokens["acme"] not in str(key)  # never stored nor listed
    api_keys.revoke(key.key_id)
    assert_error(client.get("/v1/models", headers=bearer(tokens["acme"])), 401, "unauthorized")


def test_a_revoked_key_stops_within_auth_cache_s_in_every_process(keyed):
    bound = 0.5
    quick = keyed.model_copy(update={"auth_cache_s": bound})
    with TestClient(create_app(quick)) as first, TestClient(create_app(quick)) as second:
        services = first.app.state.services
        api_keys = ApiKeys(services.client, services.keys)
        key_id, token = api_keys.create("acme")
        # both processes now hold the key in their caches; ``first`` last, so that its entry,
        # checked next, is fresh however slowly a loaded machine served ``second``
        for client in (second, first):
            assert client.get("/v1/models", headers=bearer(token)).status_code == 200
        assert services.callers.get(digest(token)) is not None
        api_keys.revoke(key_id)  # as `fewshot keys revoke` does, from another process
        revoked = time.monotonic()
        for client in (first, second):
            eventually(
                lambda c=client: c.get("/v1/models", headers=bearer(token)).status_code == 401,
                "the revoked key is refused",
                timeout=5,
            )
        assert time.monotonic() - revoked <= bound + 0.5  # the stated bound, with slack


def test_robustness_predictions_are_charged_by_their_cost(settings, start_worker, monkeypatch):
    monkeypatch.setattr(rate_limits, "clock", lambda: 7000.0 * 60 + 15)  # one window only
    budget = ROBUSTNESS_COST + 1  # one robustness prediction and one plain one
    keyed = settings.model_copy(update={"auth": "keys", "rate_predictions_per_min": budget})
    with TestClient(create_app(keyed)) as client:
        services = client.app.state.services
        acme = bearer(ApiKeys(services.client, services.keys).create("acme")[1])
        start_worker(keyed)
        files, data = support(classes=2, shots=1)
        created = client.post("/v1/adaptations", files=files, data=data, headers=acme).json()
        assert wait_for(client, created["job_id"], headers=acme)["state"] == "succeeded"
        url = f"/v1/models/{created['model_id']}/predictions"
        query = [("images", ("q.png", image_bytes(0, 5), "image/png"))]
        robust = client.post(url, files=query, data={"robustness": "true"}, headers=acme)
        assert robust.status_code == 200, robust.text
        assert client.post(url, files=query, headers=acme).status_code == 200
        assert_error(client.post(url, files=query, headers=acme), 429, "rate_limited")
        limits = client.get("/v1/limits", headers=acme).json()
        assert limits["rate_units"]["robust_prediction"] == ROBUSTNESS_COST > 1
