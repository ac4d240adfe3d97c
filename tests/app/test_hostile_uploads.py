"""Every file of the hostile corpus gets its defined answer; a refused one stores nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support
from tests.hostile_images import CORPUS, fuzzed_files, raises_beyond_documented_errors
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


def test_fuzzed_files_never_answer_5xx(client):
    """Mutated real files, some chosen because plain Pillow raises beyond its documented errors
    on them: each gets 202 or a JSON 4xx naming the file, never a 5xx."""
    files = fuzzed_files(seed=1, count=12_000)
    unusual = [d for d in files if raises_beyond_documented_errors(d)]
    assert len(unusual) >= 2  # the precondition: decoder errors that once answered 500
    for data in unusual[:10] + files[:30]:
        upload, fields = support(classes=2, shots=2)
        upload[0] = ("images", ("fuzzed.bin", data, "application/octet-stream"))
        response = client.post("/v1/adaptations", files=upload, data=fields)
        assert response.status_code in (202, 415, 422), response.text
        if response.status_code != 202:
            assert response.json()["error"]["code"] in ("invalid_image", "unsupported_image_format")
            assert "#0" in response.json()["error"]["message"]
