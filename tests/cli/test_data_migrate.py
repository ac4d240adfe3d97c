"""``fewshot data migrate``: a model adapted for real, then put back into the layout of the
version that kept its weights and report in Redis, moves into the artifact store and still
predicts; a second run moves nothing; a store that is unusable exits non-zero and loses
nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.main import create_app
from cli.main import app
from common.settings import Settings, get_settings
from tests.app.test_weights_store import adapted_model, predict
from tests.common.test_model_migration import legacy_model
from tests.service_fixtures import service_stores

pytestmark = pytest.mark.redis
PENDING_REPORT = "model_0000000000000000000a"  # a report still being computed: stays


@pytest.fixture
def local_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"artifacts_url": str(tmp_path / "artifacts")})


def migrate(settings: Settings, monkeypatch, *args: str) -> tuple[int, dict | None, str]:
    """Run the command against ``settings``' Redis and store: (exit code, JSON, output)."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("FEWSHOT_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("FEWSHOT_ARTIFACTS_URL", settings.artifacts_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["data", "migrate", *args])
    finally:
        get_settings.cache_clear()
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, json.loads(lines[-1]) if lines else None, result.output


def to_legacy_layout(settings: Settings, model_id: str) -> tuple[bytes, bytes]:
    """Put an adapted model back as the version that kept its blobs in Redis stored it."""
    stores = service_stores(settings)
    record = stores.models.get(model_id, "local")
    assert record is not None and record.weights and record.report_blob
    weights = stores.models.artifacts.get(record.weights)
    report = stores.models.artifacts.get(record.report_blob)
    stores.client.set(stores.keys.model_weights(model_id), weights)
    stores.client.set(stores.keys.model_report(model_id), report)
    stores.client.hdel(stores.keys.model(model_id), "weights", "report_blob")
    stores.models.artifacts.delete([record.weights.name, record.report_blob.name])
    return weights, report


def test_an_upgrade_moves_the_blobs_and_the_model_still_predicts(
    local_settings, start_worker, monkeypatch
):
    start_worker(local_settings)
    with TestClient(create_app(local_settings)) as client:
        model_id = adapted_model(client)
    weights, report = to_legacy_layout(local_settings, model_id)
    stores = service_stores(local_settings)
    _, pending_report = legacy_model(stores.models, PENDING_REPORT, report_state="pending")

    code, dry, _ = migrate(local_settings, monkeypatch, "--dry-run")
    assert code == 0 and dry is not None
    assert (dry["weights"], dry["reports"], dry["skipped"], dry["failed"]) == (2, 1, 1, 0)
    assert stores.models.weights_ref(model_id) is None  # a dry run changes nothing

    code, counts, output = migrate(local_settings, monkeypatch)
    assert code == 0, output
    assert counts == {
        "dry_run": False,
        **{"weights": 2, "reports": 1, "base_models": 0, "skipped": 1, "failed": 0},
        "stopped": False,
    }
    record = stores.models.get(model_id, "local")
    assert record is not None and record.weights and record.report_blob
    assert record.weights.sha256 == hashlib.sha256(weights).hexdigest()
    assert record.report_blob.sha256 == hashlib.sha256(report).hexdigest()
    root = Path(local_settings.artifacts_url)
    for ref, data in ((record.weights, weights), (record.report_blob, report)):
        assert (root / ref.name).read_bytes() == data
    assert stores.client.get(stores.keys.model_weights(model_id)) is None
    assert stores.client.get(stores.keys.model_report(model_id)) is None
    assert stores.client.get(stores.keys.model_report(PENDING_REPORT)) == pending_report

    with TestClient(create_app(local_settings)) as client:  # a new process: from the store
        assert predict(client, model_id).status_code == 200
        assert client.get(f"/v1/models/{model_id}/report").json()["available"]

    code, again, _ = migrate(local_settings, monkeypatch)
    assert code == 0 and again is not None and (again["weights"], again["reports"]) == (0, 0)


def test_a_store_that_is_unusable_exits_non_zero_and_loses_nothing(
    local_settings, monkeypatch, tmp_path
):
    stores = service_stores(local_settings)
    model_id = "model_0000000000000000000b"
    weights, report = legacy_model(stores.models, model_id)
    (tmp_path / "file").write_bytes(b"")  # a store below a file: refused, even as root
    unusable = local_settings.model_copy(update={"artifacts_url": str(tmp_path / "file" / "a")})
    code, counts, output = migrate(unusable, monkeypatch)
    assert code == 2 and counts is None
    assert "artifact store" in output and "unusable" in output

    root = Path(local_settings.artifacts_url)
    root.mkdir()
    (root / "models").write_bytes(b"")  # the probe's folder works, the models' does not
    code, counts, output = migrate(local_settings, monkeypatch)
    assert code == 1, output
    assert counts is not None and (counts["failed"], counts["weights"], counts["reports"]) == (
        2,
        0,
        0,
    )
    assert stores.client.get(stores.keys.model_weights(model_id)) == weights
    assert stores.client.get(stores.keys.model_report(model_id)) == report
    assert stores.models.weights_ref(model_id) is None
    assert sorted(p.name for p in root.iterdir()) == ["models"]  # no probe left, nor its folder
