"""Property-based tests from the OpenAPI schema (schemathesis): no 5xx, no answer that breaks
the schema (status codes, content types, bodies, headers), whatever the input; and a real
success answer of every operation that documents a JSON body, validated against its schema
(random input rarely succeeds: an upload of random bytes is refused before it answers 200)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from common.api_keys import ApiKeys
from tests.app.test_api import support, wait_for
from tests.app.test_own_base_models import archive_of
from tests.service_fixtures import image_bytes
from tests.synthetic import shape_dataset

pytestmark = [pytest.mark.redis, pytest.mark.slow]
EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def settings_for_fuzz(settings):
    return settings.model_copy(
        update={"auth": "keys", "rate_uploads_per_min": 0, "rate_predictions_per_min": 0}
    )


@pytest.fixture
def api(settings_for_fuzz, start_worker):
    """The app after start-up, with a worker, an API key and one ready model."""
    start_worker(settings_for_fuzz)  # /readyz answers 200 (503 only when not ready)
    app = create_app(settings_for_fuzz)
    with TestClient(app) as client:  # runs the lifespan: Redis and base models are ready
        services = client.app.state.services
        _, token = ApiKeys(services.client, services.keys).create("fuzz")
        client.headers["Authorization"] = f"Bearer {token}"
        files, data = support(classes=2, shots=2)
        created = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"}).json()
        assert wait_for(client, created["job_id"])["state"] == "succeeded"
        app.state.fuzz = {
            "token": token,
            "model_id": created["model_id"],
            "job_id": created["job_id"],
            "client": client,
        }
        yield app


def fuzz(operation, headers: dict, statuses: dict, path_overrides: dict | None = None) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same examples every run: a failure reproduces
        database=None,
    )
    def keeps_the_schema(case) -> None:
        case.path_parameters = {**(case.path_parameters or {}), **(path_overrides or {})}
        # a schema-valid upload may still be refused (422): random bytes are not images
        response = case.call_and_validate(
            headers=headers, excluded_checks=[positive_data_acceptance]
        )
        statuses.setdefault(operation.label, set()).add(response.status_code)

    keeps_the_schema()


def test_the_api_keeps_its_schema(api):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    headers = {"Authorization": f"Bearer {api.state.fuzz['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    random_ids: dict[str, set[int]] = {}
    for operation in operations:
        fuzz(operation, headers, random_ids)
    real_ids: dict[str, set[int]] = {}
    real = {"model_id": api.state.fuzz["model_id"], "job_id": api.state.fuzz["job_id"]}
    for operation in operations:  # again on the ready model and its job, deleting neither
        named = [name for name in real if f"{{{name}}}" in operation.path]
        if named and operation.method.upper() != "DELETE":
            fuzz(operation, headers, real_ids, {name: real[name] for name in named})

    assert random_ids["GET /v1/models/{model_id}"] == {404}
    assert 200 in random_ids["GET /v1/models"] and 422 in random_ids["GET /v1/models"]
    assert real_ids["GET /v1/models/{model_id}"] == {200}
    assert real_ids["GET /v1/models/{model_id}/report"] == {200}
    assert real_ids["POST /v1/models/{model_id}/predictions"] <= {200, 413, 415, 422}
    assert real_ids["GET /v1/jobs/{job_id}"] == {200}
    assert real_ids["POST /v1/jobs/{job_id}/cancel"] == {409}  # it has succeeded


def test_every_documented_success_body_matches_its_schema(api):
    """A real 2xx answer of each operation that documents a JSON body, validated against it."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    client, model_id = api.state.fuzz["client"], api.state.fuzz["model_id"]
    checked: set[str] = set()

    def check(response, method: str, path: str, status: int) -> dict:
        assert response.status_code == status, response.text
        schema[path][method].validate_response(response)  # raises on a mismatch
        checked.add(f"{method} {path}")
        return response.json()

    query = [("images", (f"q{c}.png", image_bytes(c, 9), "image/png")) for c in (1, 0)]
    labels = {"labels": ["class-1", "class-0"]}
    evaluation = check(
        client.post(f"/v1/models/{model_id}/evaluations", files=query, data=labels),
        "POST",
        "/v1/models/{model_id}/evaluations",
        202,
    )
    archive = ("archive", ("s.zip", archive_of(shape_dataset(20, 5, size=16)), "application/zip"))
    training = check(
        client.post("/v1/base-models", files=[archive], data={"name": "own", "image_size": "16"}),
        "POST",
        "/v1/base-models",
        202,
    )
    listed = check(client.get("/v1/base-models"), "GET", "/v1/base-models", 200)
    assert {m["scope"] for m in listed["base_models"]} == {"shipped", "tenant"}
    check(client.post(training["status_url"] + "/cancel"), "POST", "/v1/jobs/{job_id}/cancel", 202)
    wait_for(client, training["job_id"])
    form = {"robustness": "true", "eps": "0.05", "top_k": "2"}
    predicted = client.post(f"/v1/models/{model_id}/predictions", files=query, data=form)
    check(predicted, "POST", "/v1/models/{model_id}/predictions", 200)
    files, data = support(classes=2, shots=1)
    check(client.post("/v1/adaptations", files=files, data=data), "POST", "/v1/adaptations", 202)
    assert wait_for(client, evaluation["job_id"])["state"] == "succeeded"
    job = check(client.get(evaluation["status_url"]), "GET", "/v1/jobs/{job_id}", 200)
    assert job["result"] is not None
    jobs = check(client.get("/v1/jobs"), "GET", "/v1/jobs", 200)
    assert jobs["total"] >= 3 and {j["kind"] for j in jobs["jobs"]} >= {"adapt", "evaluate"}
    for path in ("/v1/models", "/v1/models/{model_id}", "/v1/models/{model_id}/report"):
        check(client.get(path.format(model_id=model_id)), "GET", path, 200)
    for path in ("/v1/limits", "/healthz", "/readyz"):
        check(client.get(path), "GET", path, 200)

    documented = {
        f"{operation.method.upper()} {operation.path}"
        for operation in (result.ok() for result in schema.get_all_operations())
        for status, response in operation.definition.raw["responses"].items()
        if status.startswith("2") and "application/json" in response.get("content", {})
    }
    assert documented == checked
