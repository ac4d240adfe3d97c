"""Property-based tests from the OpenAPI schema (schemathesis): no 5xx, no answer that breaks
the schema (status codes, content types, bodies, headers), whatever the input."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from common.api_keys import ApiKeys
from tests.app.test_api import support, wait_for

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
        app.state.fuzz = {"token": token, "model_id": created["model_id"]}
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
    real_model: dict[str, set[int]] = {}
    for operation in operations:  # again on the ready model, deleting it last
        if "{model_id}" in operation.path and operation.method.upper() != "DELETE":
            fuzz(operation, headers, real_model, {"model_id": api.state.fuzz["model_id"]})

    assert random_ids["GET /v1/models/{model_id}"] == {404}
    assert 200 in random_ids["GET /v1/models"] and 422 in random_ids["GET /v1/models"]
    assert real_model["GET /v1/models/{model_id}"] == {200}
    assert real_model["GET /v1/models/{model_id}/report"] == {200}
    assert real_model["POST /v1/models/{model_id}/predictions"] <= {200, 413, 415, 422}
