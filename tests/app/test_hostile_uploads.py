"""Every file of the hostile corpus gets its defined answer; a refused one stores nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support
from tests.hostile_images import CORPUS
from tests.service_fixtures import keys_under

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_file_in_a_support_set(client, settings, name):
    make, expected = CORPUS[name]
    files, data = support(classes=2, shots=2)
    files[0] = ("images", (f"{name}.png", make(), "image/png"))
    response = client.post("/v1/adaptations", files=files, data=data)
    jobs = [k for k in keys_under(settings.redis_url, settings.key_prefix) if b":job:" in k]
    if expected is None:
        assert response.status_code == 202, response.text
        assert jobs
    else:
        assert_error(response, *expected)
        assert "#0" in response.json()["error"]["message"]  # names the file
        assert jobs == []
