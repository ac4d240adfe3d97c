"""The bulk upgrade (common.model_migration): models an earlier version stored with their
weights and finished reports in Redis, written here as that version wrote them (a record
without ``weights``/``report_blob``, the blobs under their own keys), move into a real folder
store; what must stay in Redis stays, a second run moves nothing, a store that refuses loses
nothing, and a record deleted meanwhile is left alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import redis

import common.model_migration as migration
from common.artifacts import BlobRef, FolderStore, open_store
from common.keys import Keys, ModelState, ReportState
from common.model_blobs import REPORT, WEIGHTS
from common.model_migration import migrate_to_artifacts
from common.model_store import ModelStore
from common.tenant_base_models import BaseModelState, TenantBaseModel, TenantBaseModels
from tests.service_fixtures import new_model

pytestmark = pytest.mark.redis


@pytest.fixture
def models(redis_url: str, prefix: str, tmp_path: Path) -> ModelStore:
    client = redis.Redis.from_url(redis_url)
    return ModelStore(client, Keys(prefix), 3600, open_store(str(tmp_path / "artifacts")))


def legacy_model(
    models: ModelStore,
    model_id: str,
    report_state: ReportState | None = ReportState.DONE,
    state: ModelState = ModelState.READY,
) -> tuple[bytes, bytes]:
    """A model as the version that kept blobs in Redis stored it; its (weights, report)."""
    record = dataclasses.replace(new_model(model_id), state=state, report_state=report_state)
    fields = {k: v for k, v in record.fields().items() if k not in ("weights", "report_blob")}
    weights = f"safetensors of {model_id}".encode() * 50
    report = json.dumps({"model": model_id, "available": True}).encode()
    models.client.hset(models.keys.model(model_id), mapping=fields)
    models.client.set(models.keys.model_weights(model_id), weights)
    models.client.set(models.keys.model_report(model_id), report)
    return weights, report


def named(models: ModelStore, model_id: str) -> tuple[BlobRef | None, BlobRef | None]:
    record = models.get(model_id, "t1")
    assert record is not None
    return record.weights, record.report_blob


def assert_blob(models: ModelStore, ref: BlobRef | None, data: bytes) -> None:
    assert ref is not None and ref.sha256 == hashlib.sha256(data).hexdigest()
    assert models.artifacts.get(ref) == data


def model_id(n: int) -> str:
    return f"model_{n:020x}"


def test_weights_and_finished_reports_move_and_the_rest_stays(models):
    done, old, pending, unfinished = (model_id(n) for n in range(1, 5))
    blobs = {m: legacy_model(models, m) for m in (done,)}
    blobs[old] = legacy_model(models, old, report_state=None)  # before the report phase: done
    blobs[pending] = legacy_model(models, pending, report_state=ReportState.PENDING)
    blobs[unfinished] = legacy_model(models, unfinished, report_state=ReportState.UNFINISHED)
    orphan = model_id(5)  # weights whose record is gone (expired before them)
    models.client.set(models.keys.model_weights(orphan), b"no record")

    counts = migrate_to_artifacts(models)

    assert (counts.weights, counts.reports, counts.skipped, counts.failed) == (4, 2, 3, 0)
    for m, (weights, report) in blobs.items():
        weights_ref, report_ref = named(models, m)
        assert_blob(models, weights_ref, weights)
        assert models.client.get(models.keys.model_weights(m)) is None
        assert models.weights(m) == weights  # served from the store now
        if m in (done, old):
            assert_blob(models, report_ref, report)
            assert models.client.get(models.keys.model_report(m)) is None
        else:  # a report not finished stays in Redis, where this version keeps it
            assert report_ref is None
            assert models.client.get(models.keys.model_report(m)) == report
        assert models.report(m) == report
    assert models.client.get(models.keys.model_weights(orphan)) == b"no record"
    assert models.get(orphan, "t1") is None  # no record made up for it

    again = migrate_to_artifacts(models)
    assert (again.weights, again.reports, again.failed) == (0, 0, 0)
    assert again.skipped == 3  # the same pending, unfinished and orphan keys


def test_a_dry_run_counts_and_changes_nothing(models, tmp_path):
    weights, report = legacy_model(models, model_id(1))
    legacy_model(models, model_id(2), report_state=ReportState.PENDING)
    counts = migrate_to_artifacts(models, dry_run=True)
    assert (counts.weights, counts.reports, counts.skipped, counts.failed) == (2, 1, 1, 0)
    assert named(models, model_id(1)) == (None, None)
    assert models.client.get(models.keys.model_weights(model_id(1))) == weights
    assert models.client.get(models.keys.model_report(model_id(1))) == report
    assert not (tmp_path / "artifacts").exists()


def test_scans_batch_by_batch(models, monkeypatch):
    monkeypatch.setattr(migration, "BATCH", 4)
    ids = [model_id(n) for n in range(1, 31)]
    for m in ids:
        legacy_model(models, m)
    batches = [len(batch) for batch in migration.legacy_ids(models, WEIGHTS)]
    assert sum(batches) == 30 and len(batches) > 3  # several SCAN calls, each id once
    seen: list[int] = []
    counts = migrate_to_artifacts(models, progress=lambda c: seen.append(c.weights + c.reports))
    assert (counts.weights, counts.reports) == (30, 30)
    assert seen == sorted(seen) and len(seen) > 6  # progress after every batch
    assert list(models.client.scan_iter(match=models.keys.model_weights("*"))) == []


def test_a_store_that_refuses_loses_nothing(models, tmp_path):
    weights, report = legacy_model(models, model_id(1))
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")  # a folder store below a file: refused, even as root
    models = dataclasses.replace(models, artifacts=FolderStore(blocker / "artifacts"))
    counts = migrate_to_artifacts(models)
    assert (counts.weights, counts.reports, counts.failed) == (0, 0, 2)
    assert named(models, model_id(1)) == (None, None)
    assert models.client.get(models.keys.model_weights(model_id(1))) == weights
    assert models.client.get(models.keys.model_report(model_id(1))) == report
    assert models.weights(model_id(1)) == weights  # still served from Redis


def test_stops_when_the_store_refuses_every_blob(models, tmp_path, monkeypatch):
    monkeypatch.setattr(migration, "MAX_FAILURES_IN_A_ROW", 3)
    for n in range(1, 8):
        legacy_model(models, model_id(n))
    (tmp_path / "file").write_bytes(b"")
    models = dataclasses.replace(models, artifacts=FolderStore(tmp_path / "file" / "artifacts"))
    counts = migrate_to_artifacts(models)
    assert counts.stopped and counts.failed == 3
    assert len(list(models.client.scan_iter(match=models.keys.model_weights("*")))) == 7


@dataclasses.dataclass(frozen=True)
class DeletingStore(FolderStore):
    """A folder store while another process deletes the model it stores a blob of."""

    client: redis.Redis | None = None
    record_key: str = ""

    def put(self, folder: str, data: bytes, ext: str = "") -> BlobRef:
        ref = super().put(folder, data, ext)
        assert self.client is not None
        self.client.delete(self.record_key)  # after the blob, before the record names it
        return ref


def test_a_record_deleted_meanwhile_is_left_alone_and_its_blob_to_the_sweep(models, tmp_path):
    m = model_id(1)
    weights, _ = legacy_model(models, m)
    store = DeletingStore(tmp_path / "artifacts", models.client, models.keys.model(m))
    models = dataclasses.replace(models, artifacts=store)
    assert models.move_legacy(WEIGHTS, m, weights) is False
    assert models.client.exists(models.keys.model(m)) == 0  # not brought back by the move
    assert [b.name for b in store.list("models/")] == [  # the orphan, for the sweep
        f"models/{m}/{hashlib.sha256(weights).hexdigest()}.safetensors"
    ]


def test_a_report_that_changed_meanwhile_is_not_moved(models):
    m = model_id(1)
    legacy_model(models, m)
    assert models.move_legacy(REPORT, m, b'{"an": "older report"}') is False
    assert named(models, m) == (None, None)
    assert models.client.get(models.keys.model_report(m)) is not None


def test_tenants_base_models_move_too(models):
    bases = TenantBaseModels(models.client, models.keys, models.artifacts)
    pipe = models.client.pipeline()
    ready = TenantBaseModel("shapes", BaseModelState.READY, "job_1")
    bases.create_writes(pipe, "t1", ready)  # as an earlier version wrote it: no blob named
    bases.create_writes(pipe, "t1", TenantBaseModel("other", BaseModelState.TRAINING, "job_2"))
    pipe.set(models.keys.base_model("t1", "shapes"), b"its weights")
    pipe.set(models.keys.base_model("t1", "other"), b"a key with no ready record")
    pipe.execute()
    assert migrate_to_artifacts(models, bases, dry_run=True).base_models == 1
    assert bases.record("t1", "shapes").weights is None  # a dry run changes nothing
    counts = migrate_to_artifacts(models, bases)
    assert counts.base_models == 1 and counts.skipped == 1 and counts.failed == 0
    moved = bases.record("t1", "shapes")
    assert moved.weights is not None and bases.weights("t1", moved) == b"its weights"
    assert not models.client.exists(models.keys.base_model("t1", "shapes"))
    assert models.client.exists(models.keys.base_model("t1", "other"))  # left alone
    assert migrate_to_artifacts(models, bases).base_models == 0


def test_a_base_model_of_an_earlier_version_moves_on_its_first_read(models):
    bases = TenantBaseModels(models.client, models.keys, models.artifacts)
    pipe = models.client.pipeline()
    bases.create_writes(pipe, "t1", TenantBaseModel("shapes", BaseModelState.READY, "job_1"))
    pipe.set(models.keys.base_model("t1", "shapes"), b"its weights")
    pipe.execute()
    assert bases.weights("t1", bases.record("t1", "shapes")) == b"its weights"  # from Redis
    moved = bases.record("t1", "shapes")
    assert moved.weights is not None and models.artifacts.get(moved.weights) == b"its weights"
    assert not models.client.exists(models.keys.base_model("t1", "shapes"))
