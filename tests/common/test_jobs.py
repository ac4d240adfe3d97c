"""Job life cycle and the stream queue against a real Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis

from common.jobs import CancelRequested, JobConflict, JobNotFound, JobStore, Superseded
from common.keys import JobKind, JobState, Keys
from common.queue import JobQueue

pytestmark = pytest.mark.redis
IDLE_MS = 400  # takeover threshold; margins below are wide so a loaded machine cannot flip them


@pytest.fixture
def parts(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    queue = JobQueue(client, keys, claim_idle_ms=IDLE_MS)
    queue.ensure_group()
    return client, keys, JobStore(client, keys, 600, 600), queue


def _create(store: JobStore, model: bool = True) -> str:
    model_record = {"id": "model_x", "state": "pending", "created": 1.0} if model else None
    return store.create(
        JobKind.ADAPT, b"payload", {"model_id": "model_x"}, tenant="t1", model_record=model_record
    )


def test_create_stores_everything_and_enqueues(parts):
    client, keys, store, queue = parts
    job_id = _create(store)
    job = store.get(job_id)
    assert job["state"] == "queued" and job["attempt"] == "0" and job["kind"] == "adapt"
    assert client.get(keys.job_input(job_id)) == b"payload"
    assert 0 < client.ttl(keys.job(job_id)) <= 600
    assert client.hget(keys.model("model_x"), "job_id").decode() == job_id
    delivery = queue.next("w1", block_ms=10)
    assert delivery.job_id == job_id and delivery.deliveries == 1
    with pytest.raises(JobNotFound):
        store.get("job_missing")


def test_attempts_guard_progress_and_finish(parts):
    client, keys, store, _ = parts
    job_id = _create(store)
    first = store.start(job_id, "w1")
    second = store.start(job_id, "w2")  # a takeover
    assert (first, second) == (1, 2)
    with pytest.raises(Superseded):
        store.progress(job_id, first, 1, 10)
    store.progress(job_id, second, 3, 10)
    assert store.get(job_id)["step"] == "3"

    def publish(pipe):
        pipe.set(keys.model_weights("model_x"), b"weights")

    assert not store.finish(job_id, first, JobState.SUCCEEDED, extra=publish)
    assert client.get(keys.model_weights("model_x")) is None  # nothing from the stale attempt
    assert store.finish(job_id, second, JobState.SUCCEEDED, extra=publish)
    assert store.get(job_id)["state"] == "succeeded"
    assert client.get(keys.model_weights("model_x")) == b"weights"
    assert store.start(job_id, "w3") is None  # finished jobs are never started again


def test_cancel_queued_running_and_finished(parts):
    client, keys, store, _ = parts
    queued = _create(store)
    assert store.cancel(queued) == "cancelled"
    assert store.get(queued)["state"] == "cancelled"
    assert client.hget(keys.model("model_x"), "state") == b"failed"
    with pytest.raises(JobConflict, match="already cancelled"):
        store.cancel(queued)
    running = _create(store, model=False)
    attempt = store.start(running, "w1")
    assert store.cancel(running) == "running"
    with pytest.raises(CancelRequested):
        store.progress(running, attempt, 1, 5)


def test_requeue_and_fail_unstarted(parts):
    _, _, store, queue = parts
    job_id = _create(store)
    first = queue.next("w1", block_ms=10)
    attempt = store.start(job_id, "w1")
    assert store.requeue(job_id, attempt)
    queue.ack(first.entry_id)
    assert store.get(job_id)["state"] == "queued"
    again = queue.next("w2", block_ms=10)
    assert again.job_id == job_id and again.entry_id != first.entry_id
    assert store.fail_unstarted(job_id, {"code": "poison_job", "message": "m"})
    assert json.loads(store.get(job_id)["error"])["code"] == "poison_job"


def test_dead_consumer_entries_are_taken_over_and_counted(parts):
    _, _, store, queue = parts
    job_id = _create(store)
    first = queue.next("dead-worker", block_ms=10)
    assert queue.next("w2", block_ms=10) is None  # not idle long enough yet
    time.sleep(IDLE_MS / 1000 + 0.1)
    taken = queue.next("w2", block_ms=10)
    assert (taken.entry_id, taken.job_id, taken.deliveries) == (first.entry_id, job_id, 2)
    time.sleep(IDLE_MS / 2000)
    queue.touch(taken.entry_id, "w2")  # a live worker keeps its claim fresh
    time.sleep(IDLE_MS / 2000)  # idle since the touch: well under the threshold
    assert queue.next("w3", block_ms=10) is None
    queue.ack(taken.entry_id)
    time.sleep(IDLE_MS / 1000 + 0.1)
    assert queue.next("w3", block_ms=10) is None
    assert queue.depth_by_state() == (0, 0)
