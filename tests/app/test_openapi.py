"""What the OpenAPI document says matches what the routes do: the API key is declared (bearer)
exactly on the routes that authenticate, and each upload route documents exactly the form
fields it reads (recorded while real requests go through, against a real Redis and worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.datastructures import FormData, ImmutableMultiDict

from app.auth import authenticate
from app.main import create_app
from common.settings import Settings
from tests.app.test_api import support, wait_for
from tests.app.test_own_base_models import archive_of
from tests.service_fixtures import image_bytes
from tests.synthetic import shape_dataset


def calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from calls(sub)


def test_the_bearer_scheme_is_declared_where_the_api_key_is_checked():
    app = create_app(Settings(auth="keys"))
    document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s.get("scheme") == "bearer"]
    assert all(schemes[name]["type"] == "http" for name in bearer)
    assert len(bearer) == 1, schemes
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    for route in routes:
        checks_key = authenticate in calls(route.dependant)
        assert checks_key == route.path.startswith("/v1/"), route.path
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            expected = [{bearer[0]: []}] if checks_key else None
            assert operation.get("security") == expected, (method, route.path)
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert sum(path.startswith("/v1/") for path in document["paths"]) >= 8


@pytest.fixture
def read_fields(monkeypatch) -> set[str]:
    """Names of the form fields the app reads (every accessor of a parsed form)."""
    names: set[str] = set()

    def recording(method):
        def read(self, key, *args):
            names.add(key)
            return method(self, key, *args)

        return read

    for accessor in ("getlist", "get", "__getitem__", "__contains__"):
        monkeypatch.setattr(FormData, accessor, recording(getattr(ImmutableMultiDict, accessor)))
    return names


def documented_fields(client: TestClient, path: str) -> set[str]:
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    return set(schema["properties"])


@pytest.mark.redis
def test_predictions_and_evaluations_document_the_fields_they_read(
    settings, worker_thread, read_fields
):
    with TestClient(create_app(settings)) as client:
        files, data = support(classes=2, shots=1)
        created = client.post("/v1/adaptations", files=files, data={**data, "steps": "1"}).json()
        assert wait_for(client, created["job_id"])["state"] == "succeeded"
        model = f"/v1/models/{created['model_id']}"
        query = [("images", (f"q{c}.png", image_bytes(c, 9), "image/png")) for c in (1, 0)]

        read_fields.clear()
        form = {"robustness": "true", "eps": "0.05", "top_k": "2"}
        predicted = client.post(f"{model}/predictions", files=query, data=form)
        assert predicted.status_code == 200, predicted.text
        path = "/v1/models/{model_id}/predictions"
        assert read_fields == documented_fields(client, path)

        read_fields.clear()
        labels = {"labels": ["class-1", "class-0"], "allow_out_of_domain": "false"}
        evaluation = client.post(f"{model}/evaluations", files=query, data=labels)
        assert evaluation.status_code == 202, evaluation.text
        # the out-of-domain check also looks for val_images, which an evaluation never has
        path = "/v1/models/{model_id}/evaluations"
        assert read_fields - {"val_images"} == documented_fields(client, path)
        wait_for(client, evaluation.json()["job_id"])


@pytest.mark.redis
def test_base_model_uploads_document_the_fields_they_read(settings, read_fields):
    with TestClient(create_app(settings)) as client:  # no worker: the job stays queued
        archive = archive_of(shape_dataset(20, 5, size=16))
        form = {"name": "own", "description": "shapes", "channels": "3", "image_size": "16"}
        form |= {"eps": "0.03", "iterations": "5"}
        created = client.post(
            "/v1/base-models", files=[("archive", ("s.zip", archive, "application/zip"))], data=form
        )
        assert created.status_code == 202, created.text
        assert read_fields == documented_fields(client, "/v1/base-models")
