"""/readyz asks the artifact store (a real folder, made unusable by a file in its place and
then restored): not ready while it cannot write, with the reason; /healthz answers all along.
The API warns at start when it runs in a container without a shared store."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.settings import Settings
from tests.app.test_api import assert_error

pytestmark = pytest.mark.redis


def test_readiness_follows_the_artifact_store_and_liveness_stays(settings, tmp_path):
    root = tmp_path / "artifacts"
    local = settings.model_copy(update={"artifacts_url": str(root)})
    with TestClient(create_app(local)) as client:
        ready = client.get("/readyz", params={"workers": "false"})
        assert ready.status_code == 200 and ready.json()["artifacts"] is True
        shutil.rmtree(root)
        root.write_bytes(b"")  # a file where the store's folder was: refused even as root
        refused = client.get("/readyz", params={"workers": "false"})
        assert_error(refused, 503, "not_ready")
        message = refused.json()["error"]["message"]
        assert "artifact store" in message and str(root) in message and "unusable" in message
        assert client.get("/healthz").json() == {"status": "ok"}
        root.unlink()
        assert client.get("/readyz", params={"workers": "false"}).status_code == 200
    assert list(root.iterdir()) == []  # the probes left nothing, their folder neither


def api_start_log(settings: Settings, caplog) -> str:
    with (
        caplog.at_level(logging.WARNING, logger="common.artifact_health"),
        TestClient(create_app(settings)),
    ):
        pass
    return caplog.text


def test_the_api_warns_when_a_container_keeps_artifacts_to_itself(
    settings, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    unset = settings.model_copy(update={"artifacts_url": "", "data_dir": tmp_path})
    text = api_start_log(unset, caplog)
    assert "ARTIFACTS NOT SHARED" in text and "FEWSHOT_ARTIFACTS_URL" in text
    assert str(tmp_path / "artifacts") in text
    caplog.clear()
    shared = settings.model_copy(update={"artifacts_url": str(Path(tmp_path) / "shared")})
    assert "ARTIFACTS NOT SHARED" not in api_start_log(shared, caplog)
