"""Faults found by attacking the live service (issue 11, jobs and workers): a live worker keeps
its long job, a job without a record does not kill workers, an evaluation's fate never touches
the model it evaluates. Real Redis, real worker threads, the real adaptation handler."""

from __future__ import annotations

import threading

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from common import telemetry
from common.job_record import JobRecord
from common.jobs import JobStore
from common.keys import JobState, Keys
from common.queue import JobQueue
from tests.app.test_api import support, wait_for
from tests.service_fixtures import eventually, image_bytes, job_store
from tests.worker.test_worker import _create_job
from worker import runner
from worker.registry import HANDLERS

pytestmark = pytest.mark.redis
CLAIM_IDLE_MS = 2000
STALL_S = 3 * CLAIM_IDLE_MS / 1000  # a handler this long without a progress report


def _finished(store: JobStore, job_id: str) -> JobRecord | None:
    job = store.get(job_id)
    return job if job.state.finished else None


def _succeeds_once_on_two_workers(settings, start_worker, model_id: str) -> JobRecord:
    """Run one job with two workers (the idle one would take over an entry left to go stale):
    it succeeds exactly once and its entry is acknowledged (after the state); its record."""
    client, keys = redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix)
    store = job_store(client, keys)
    job_id = _create_job(settings, 3, model_id)
    for name in ("w1", "w2"):
        start_worker(settings, name)
    job = eventually(lambda: _finished(store, job_id), "the job finishes", timeout=120)
    assert job.state == JobState.SUCCEEDED, job
    assert telemetry.job_counts(client, keys)[("adapt", "succeeded")] == 1
    eventually(lambda: client.xlen(keys.stream) == 0, "the entry acknowledged")
    return job


@pytest.mark.slow
def test_a_live_worker_keeps_a_job_that_reports_no_progress_for_long(
    settings, start_worker, monkeypatch
):
    settings = settings.model_copy(update={"claim_idle_ms": CLAIM_IDLE_MS, "heartbeat_s": 0.1})
    adapt = HANDLERS["adapt"]

    def slow_adapt(context, job, progress, publish_model):
        threading.Event().wait(STALL_S)  # a long phase with no progress call, then the work
        return adapt(context, job, progress, publish_model)

    monkeypatch.setitem(HANDLERS, "adapt", slow_adapt)
    job = _succeeds_once_on_two_workers(settings, start_worker, "model_long")
    assert job.attempt == 1, job  # never taken over


def test_an_entry_without_a_job_record_is_dropped_and_workers_live_on(settings, start_worker):
    client, keys = redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix)
    store = job_store(client, keys)
    orphan = _create_job(settings, 3, "model_orphan")
    client.delete(keys.job(orphan))  # as when a queued job outlives its TTL
    worker = start_worker(settings, "w1")
    after = _create_job(settings, 3, "model_after")
    job = eventually(lambda: _finished(store, after), "the next job finishes", timeout=120)
    assert job.state == JobState.SUCCEEDED, job
    eventually(lambda: client.xlen(keys.stream) == 0, "both entries acknowledged or dropped")
    assert not worker.stop.is_set()
    with TestClient(create_app(settings)) as api:
        assert api.get("/readyz").status_code == 200


def test_cancelling_an_evaluation_leaves_its_model_ready(settings, start_worker):
    worker = start_worker(settings, "w1")
    with TestClient(create_app(settings)) as api:
        files, data = support(classes=2, shots=2)
        created = api.post("/v1/adaptations", files=files, data={**data, "steps": "2"}).json()
        assert wait_for(api, created["job_id"])["state"] == "succeeded"
        model_id = created["model_id"]
        worker.stop.set()  # no worker: the evaluation stays queued until cancelled
        eventually(lambda: not settings.worker_alive_file.exists(), "the worker stops")
        query = [("images", (f"q{c}.png", image_bytes(c, 7), "image/png")) for c in (0, 1)]
        evaluation = api.post(
            f"/v1/models/{model_id}/evaluations",
            files=query,
            data={"labels": ["class-0", "class-1"]},
        )
        assert evaluation.status_code == 202, evaluation.text
        job_id = evaluation.json()["job_id"]
        assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
        assert api.get(f"/v1/models/{model_id}").json()["state"] == "ready"
        predicted = api.post(f"/v1/models/{model_id}/predictions", files=query)
        assert predicted.status_code == 200, predicted.text


@pytest.mark.slow
def test_a_silent_job_is_presumed_stuck_and_taken_over_once(settings, start_worker, monkeypatch):
    settings = settings.model_copy(
        update={"claim_idle_ms": CLAIM_IDLE_MS, "heartbeat_s": 0.1, "max_silent_s": 0.5}
    )
    adapt = HANDLERS["adapt"]

    def stuck_first_time(context, job, progress, publish_model):
        if job.attempt == 1:  # the first attempt hangs, silent, past max_silent_s
            threading.Event().wait(STALL_S)
        return adapt(context, job, progress, publish_model)

    monkeypatch.setitem(HANDLERS, "adapt", stuck_first_time)
    job = _succeeds_once_on_two_workers(settings, start_worker, "model_stuck")
    assert job.attempt == 2, job  # taken over once; the stuck worker, refused, left it


def test_deliveries_that_never_reached_a_handler_do_not_make_a_job_poison(settings, start_worker):
    """As when Redis blips between a delivery and the job's start, six times over."""
    settings = settings.model_copy(update={"claim_idle_ms": 1000, "heartbeat_s": 0.1})
    client, keys = redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix)
    store = job_store(client, keys)
    job_id = _create_job(settings, 3, "model_blips")
    blipping = JobQueue(client, keys, claim_idle_ms=0)
    blipping.ensure_group()
    deliveries = [blipping.next("blip", block_ms=10) for _ in range(6)]
    assert [d.deliveries for d in deliveries] == [1, 2, 3, 4, 5, 6]  # none reached a handler
    assert deliveries[-1].deliveries > settings.max_deliveries
    start_worker(settings, "w1")  # takes the entry over once it has been idle 1 s
    job = eventually(lambda: _finished(store, job_id), "the job finishes", timeout=120)
    assert job.state == JobState.SUCCEEDED and job.attempt == 1, job


def test_a_worker_failing_at_every_turn_stops_and_says_so(settings, start_worker, monkeypatch):
    """One bad entry never stops a worker; a worker that can serve nothing at all does, so its
    supervisor starts a fresh one instead of a zombie that beats but never works."""
    monkeypatch.setattr(runner, "MAX_BACKOFF_S", 0.01)  # ten failures in a moment, not 50 s
    client, keys = redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix)
    worker = start_worker(settings, "w1")
    eventually(lambda: client.zscore(keys.workers, "w1"), "the worker serves")
    assert not worker.failed
    client.delete(keys.stream)
    client.set(keys.stream, "clobbered")  # an operator's mistake: every queue call fails
    eventually(lambda: worker.stop.is_set(), "the worker gives up")
    assert worker.failed
