"""The job and model records: a hash as Redis answers it reads into typed fields, fields a
record lacks get their one fallback, and a record writes back the hash it was read from."""

from __future__ import annotations

import pytest

from common.job_errors import JobNotFound
from common.job_record import JobChange, JobRecord
from common.keys import JobKind, JobState, ModelState, ReportState
from common.model_record import ModelChange, ModelRecord, ModelStatus


def _as_redis_answers(fields: dict) -> dict[bytes, bytes]:
    return {k.encode(): str(v).encode() for k, v in fields.items()}


def test_a_job_hash_reads_typed_and_writes_back_the_same():
    stored = {
        "id": "job_1",
        "kind": "adapt",
        "state": "running",
        "tenant": "t",
        "created": "1.5",
        "base_model": "b",
        "settings": '{"steps": 3}',
        "model_id": "model_1",
        "request_id": "",
        "attempt": "2",
        "step": "1",
        "total": "9",
        "cancel_requested": "1",
        "worker": "w",
        "started": "2.25",
        "phase": "adapting",
        "error": '{"code": "c", "message": "m"}',
    }
    job = JobRecord.from_hash(_as_redis_answers(stored))
    assert (job.kind, job.state, job.attempt, job.cancel_requested) == (
        JobKind.ADAPT,
        JobState.RUNNING,
        2,
        True,
    )
    assert job.started == 2.25 and job.finished is None and job.error_code == "c"
    assert {k: str(v) for k, v in job.fields().items()} == stored


def test_a_job_lacking_fields_gets_their_fallbacks():
    job = JobRecord.from_hash({"id": "job_1", "kind": "evaluate", "state": "queued"})
    assert (job.tenant, job.attempt, job.step, job.total) == ("", 0, 0, 0)
    assert job.model_id is None and job.created is None and not job.cancel_requested
    assert not job.published and job.run_seconds is None
    assert JobRecord.from_hash({**job.fields(), "started": ""}).started is None


@pytest.mark.parametrize(
    "raw", [{}, {b"step": b"3", b"total": b"9"}, {"id": "job_1", "kind": "adapt"}]
)
def test_a_hash_without_id_kind_and_state_is_no_job(raw):
    """A late progress write after the record expired leaves such a hash: not found, not a
    crash."""
    with pytest.raises(JobNotFound):
        JobRecord.from_hash(raw)


def test_a_job_change_writes_only_what_it_changes():
    change = JobChange(state=JobState.FAILED, finished=3.0, error={"code": "c", "message": "m"})
    assert change.fields() == {
        "state": "failed",
        "finished": 3.0,
        "error": '{"code": "c", "message": "m"}',
    }
    assert JobChange(worker="", step=0).fields() == {"worker": "", "step": 0}


def test_a_model_hash_reads_typed_and_writes_back_the_same():
    stored = {
        "id": "model_1",
        "tenant": "t",
        "state": "ready",
        "created": "1.5",
        "base_model": "b",
        "classes": '["a", "b"]',
        "settings": '{"steps": 3}',
        "job_id": "job_1",
        "name": "n",
        "description": "",
        "support_size": "4",
        "validation_size": "0",
        "warnings": '["w"]',
        "report_state": "pending",
        "report_summary": '{"available": false}',
    }
    model = ModelRecord.from_hash(_as_redis_answers(stored))
    assert model.classes == ("a", "b") and model.warnings == ("w",)
    assert model.report_progress == ReportState.PENDING and model.report_summary == {
        "available": False
    }
    assert {k: str(v) for k, v in model.fields().items()} == stored


def test_a_model_lacking_fields_gets_their_fallbacks():
    written_before_the_report_phase = {
        "id": "model_1",
        "tenant": "t",
        "state": "ready",
        "created": "1",
        "base_model": "b",
        "classes": "[]",
        "settings": "{}",
    }
    model = ModelRecord.from_hash(written_before_the_report_phase)
    assert model.report_progress == ReportState.DONE  # ready: its report came with it
    assert (model.name, model.support_size, model.warnings, model.job_id) == ("", 0, (), None)
    pending = ModelRecord.from_hash({**written_before_the_report_phase, "state": "pending"})
    assert pending.report_progress is None


def test_the_store_reads_a_models_status_alone():
    status = ModelStatus.from_values([b"ready", b"pending", b"job_1"])
    assert status.state_if_made_by("job_1") == ModelState.READY and status.awaits_a_job
    assert status.state_if_made_by("job_2") is None
    gone = ModelStatus.from_values([None, None, None])
    assert gone.state is None and not gone.awaits_a_job
    assert ModelChange(state=ModelState.FAILED).fields() == {"state": "failed"}
