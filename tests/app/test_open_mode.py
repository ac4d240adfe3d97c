"""Open mode (no keys) answers only the local machine: no DNS rebinding, no cross-site writes;
and it cannot be switched on for a network address by accident."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.main import create_app
from common.settings import Settings
from tests.app.test_api import assert_error, support
from tests.service_fixtures import keys_under

pytestmark = pytest.mark.redis
LOCAL = {"Host": "127.0.0.1:8000"}


@pytest.fixture
def client(settings):
    local_only = settings.model_copy(update={"open_hosts": "localhost,127.0.0.1,::1"})
    with TestClient(create_app(local_only)) as test_client:
        yield test_client


def jobs_stored(settings) -> list[bytes]:
    return [k for k in keys_under(settings.redis_url, settings.key_prefix) if b":job:" in k]


def test_requests_to_a_rebound_name_are_refused(client, settings):
    files, data = support(classes=2, shots=2)
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "10.0.0.5"):
        assert_error(client.get("/v1/models", headers={"Host": host}), 403, "forbidden_host")
        posted = client.post("/v1/adaptations", files=files, data=data, headers={"Host": host})
        assert_error(posted, 403, "forbidden_host")
    assert jobs_stored(settings) == []
    for host in ("127.0.0.1:8000", "localhost", "LOCALHOST:1234", "[::1]:8000"):
        assert client.get("/v1/models", headers={"Host": host}).status_code == 200, host


def test_cross_site_writes_are_refused_and_same_origin_ones_pass(client, settings):
    files, data = support(classes=2, shots=2)
    for hostile in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a local file
        {"Origin": "http://127.0.0.1:9999"},  # another local port is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ):
        posted = client.post("/v1/adaptations", files=files, data=data, headers=LOCAL | hostile)
        assert_error(posted, 403, "cross_origin")
    assert jobs_stored(settings) == []
    assert client.get("/v1/models", headers=LOCAL | {"Origin": "http://evil.example"}).is_success
    console = LOCAL | {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/v1/adaptations", files=files, data=data, headers=console).is_success
    assert client.post("/v1/adaptations", files=files, data=data, headers=LOCAL).is_success


def test_keys_mode_is_not_affected(settings):
    keys_mode = settings.model_copy(update={"auth": "keys"})
    with TestClient(create_app(keys_mode)) as client:
        answer = client.get("/v1/models", headers={"Host": "api.example.com"})
        assert_error(answer, 401, "unauthorized")


def test_open_mode_on_a_network_address_needs_a_second_setting(monkeypatch):
    monkeypatch.setenv("FEWSHOT_HOST", "0.0.0.0")  # as the image sets it
    monkeypatch.setenv("FEWSHOT_AUTH", "open")  # as if exported in a shell by mistake
    with pytest.raises(ValidationError, match="FEWSHOT_ALLOW_OPEN_NETWORK"):
        Settings()
    monkeypatch.setenv("FEWSHOT_ALLOW_OPEN_NETWORK", "true")
    assert Settings().auth == "open"
    monkeypatch.delenv("FEWSHOT_ALLOW_OPEN_NETWORK")
    monkeypatch.setenv("FEWSHOT_AUTH", "keys")
    assert Settings().host == "0.0.0.0"
    monkeypatch.setenv("FEWSHOT_AUTH", "open")
    monkeypatch.setenv("FEWSHOT_HOST", "127.0.0.1")
    assert Settings().auth == "open"
