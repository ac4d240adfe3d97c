"""``fewshot keys``: a created token works against the API; bad input exits 2 and stores nothing."""

from __future__ import annotations

import json

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.main import create_app
from cli.main import app
from common.settings import get_settings
from tests.service_fixtures import eventually, keys_under

pytestmark = pytest.mark.redis


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("FEWSHOT_KEY_PREFIX", settings.key_prefix)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_create_list_revoke(env, settings):
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--name", "ci"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    keyed = settings.model_copy(update={"auth": "keys"})
    with TestClient(create_app(keyed)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/models", headers=headers).status_code == 200
        listed = runner.invoke(app, ["keys", "list"])
        (record,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert record["tenant"] == "acme" and record["name"] == "ci" and token not in listed.stdout
        revoked = runner.invoke(app, ["keys", "revoke", record["key_id"]])
        assert revoked.exit_code == 0, revoked.output
        eventually(  # a process that read the key trusts it for auth_cache_s
            lambda: client.get("/v1/models", headers=headers).status_code == 401,
            "the revoked key is refused",
            timeout=settings.auth_cache_s + 2,
        )


def test_bad_input_exits_2_and_stores_nothing(env, settings):
    runner = CliRunner()
    bad_tenant = runner.invoke(app, ["keys", "create", "--tenant", "no spaces"])
    assert bad_tenant.exit_code == 2 and "tenant" in bad_tenant.output
    unknown = runner.invoke(app, ["keys", "revoke", "0123456789ab"])
    assert unknown.exit_code == 2 and "no API key" in unknown.output
    assert keys_under(settings.redis_url, settings.key_prefix) == []
    assert redis.Redis.from_url(settings.redis_url).ping()
