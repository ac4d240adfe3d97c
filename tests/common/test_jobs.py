"""Job life cycle and the stream queue against a real Redis."""

from __future__ import annotations

import pytest
import redis

from common.job_errors import (
    CancelRequested,
    JobConflict,
    JobNotFound,
    PoisonJob,
    Superseded,
    TooManyJobs,
)
from common.jobs import JobStore
from common.keys import WORKER_GROUP, JobKind, JobState, Keys
from common.queue import JobQueue
from tests.service_fixtures import eventually, job_store, new_model

pytestmark = pytest.mark.redis
# Takeover thresholds. No test waits a fixed time: one that must not see a takeover uses a
# threshold no test lasts, one that must see it polls a short threshold until it happens.
PATIENT_MS = 600_000
IDLE_MS = 200


@pytest.fixture
def parts(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    queue = JobQueue(client, keys, claim_idle_ms=PATIENT_MS)
    queue.ensure_group()
    return client, keys, job_store(client, keys), queue


def _create(store: JobStore, model: bool = True) -> str:
    return store.create(
        JobKind.ADAPT,
        b"payload",
        tenant="t1",
        base_model="tiny-adml",
        settings="{}",
        model_id="model_x",
        new_model=new_model("model_x") if model else None,
    )


def _evaluation(store: JobStore, tenant: str, max_active: int | None = None) -> str:
    return store.create(
        JobKind.EVALUATE,
        b"p",
        tenant=tenant,
        base_model="tiny-adml",
        settings="{}",
        model_id="m",
        max_active=max_active,
    )


def test_create_stores_everything_and_enqueues(parts):
    client, keys, store, queue = parts
    job_id = _create(store)
    job = store.get(job_id)
    assert job.state == JobState.QUEUED and job.attempt == 0 and job.kind == JobKind.ADAPT
    assert store.input(job) == b"payload" and job.input is not None  # a blob, not a key
    assert not client.exists(keys.job_input(job_id))
    assert 0 < client.ttl(keys.job(job_id)) <= 600
    assert client.hget(keys.model("model_x"), "job_id").decode() == job_id
    delivery = queue.next("w1", block_ms=10)
    assert delivery.job_id == job_id and delivery.deliveries == 1
    with pytest.raises(JobNotFound):
        store.get("job_missing")


def test_attempts_guard_progress_and_finish(parts):
    client, keys, store, _ = parts
    job_id = _create(store)
    first = store.start(job_id, "w1", 3)
    second = store.start(job_id, "w2", 3)  # a takeover
    assert (first, second) == (1, 2)
    with pytest.raises(Superseded):
        store.progress(job_id, first, 1, 10)
    store.progress(job_id, second, 3, 10)
    assert store.get(job_id).step == 3

    def publish(pipe):
        pipe.set(keys.model_weights("model_x"), b"weights")

    assert not store.finish(job_id, first, JobState.SUCCEEDED, extra=publish)
    assert client.get(keys.model_weights("model_x")) is None  # nothing from the stale attempt
    assert store.finish(job_id, second, JobState.SUCCEEDED, extra=publish)
    assert store.get(job_id).state == JobState.SUCCEEDED
    assert client.get(keys.model_weights("model_x")) == b"weights"
    assert store.start(job_id, "w3", 3) is None  # finished jobs are never started again


def test_cancel_queued_running_and_finished(parts):
    client, keys, store, _ = parts
    queued = _create(store)
    assert store.cancel(queued) == "cancelled"
    assert store.get(queued).state == JobState.CANCELLED
    assert client.hget(keys.model("model_x"), "state") == b"cancelled"
    with pytest.raises(JobConflict, match="has already ended: cancelled"):
        store.cancel(queued)
    running = _create(store, model=False)
    attempt = store.start(running, "w1", 3)
    assert store.cancel(running) == "running"
    with pytest.raises(CancelRequested):
        store.progress(running, attempt, 1, 5)


def test_requeue_and_fail_unstarted(parts):
    _, _, store, queue = parts
    job_id = _create(store)
    first = queue.next("w1", block_ms=10)
    attempt = store.start(job_id, "w1", 3)
    assert store.requeue(job_id, attempt)
    queue.ack(first.entry_id)
    assert store.get(job_id).state == JobState.QUEUED
    again = queue.next("w2", block_ms=10)
    assert again.job_id == job_id and again.entry_id != first.entry_id
    assert store.fail_unstarted(job_id, {"code": "poison_job", "message": "m"})
    assert store.get(job_id).error_code == "poison_job"


def _idle_ms(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """Each pending entry's time since its last delivery or touch, as Redis reports it."""
    pending = client.xpending_range(keys.stream, WORKER_GROUP, min="-", max="+", count=100)
    return {p["message_id"].decode(): int(p["time_since_delivered"]) for p in pending}


def test_dead_consumer_entries_are_taken_over_and_counted(parts):
    client, keys, store, patient = parts
    eager = JobQueue(client, keys, claim_idle_ms=IDLE_MS)
    job_id = _create(store)
    first = patient.next("dead-worker", block_ms=10)
    assert patient.next("w2", block_ms=10) is None  # not idle for ten minutes: not taken
    taken = eventually(lambda: eager.next("w2", block_ms=10), "takeover after idling")
    assert (taken.entry_id, taken.job_id, taken.deliveries) == (first.entry_id, job_id, 2)
    assert _idle_ms(client, keys).keys() == {taken.entry_id}
    patient.ack(taken.entry_id)
    anything_pending = JobQueue(client, keys, claim_idle_ms=0)  # would take any pending entry
    assert anything_pending.next("w3", block_ms=10) is None
    assert patient.depth_by_state() == (0, 0)


def test_a_touch_resets_the_idle_time(parts):
    client, keys, store, patient = parts
    for _ in range(2):
        _create(store)
    touched, left = (patient.next("w1", block_ms=10).entry_id for _ in range(2))
    # both delivered; once the one left alone has idled 50 ms, the touched one must have
    # idled less than it by at least the time between its delivery and its touch
    eventually(lambda: _idle_ms(client, keys)[left] >= 50, "entries idling")
    patient.touch(touched, "w1")
    idle = _idle_ms(client, keys)
    assert idle[left] - idle[touched] >= 50, idle


def test_a_touch_never_takes_an_entry_back(parts):
    client, keys, store, patient = parts
    _create(store)
    entry = patient.next("w1", block_ms=10).entry_id
    assert patient.touch(entry, "w1")  # still its own
    taken = JobQueue(client, keys, claim_idle_ms=0).next("w2", block_ms=10)
    assert taken.entry_id == entry
    assert not patient.touch(entry, "w1")  # w1's late heartbeat: no steal-back
    (pending,) = client.xpending_range(keys.stream, WORKER_GROUP, min="-", max="+", count=10)
    assert pending["consumer"] == b"w2"
    patient.ack(entry)
    assert not patient.touch(entry, "w2")  # acknowledged: nobody's


def test_only_attempts_that_died_in_a_handler_make_a_job_poison(parts):
    _, _, store, _ = parts
    job_id = _create(store)
    for expected in (1, 2, 3):  # each attempt started, then its worker died (still running)
        assert store.start(job_id, f"w{expected}", 3) == expected
    with pytest.raises(PoisonJob) as poison:
        store.start(job_id, "w4", 3)
    assert poison.value.attempts == 3 and store.get(job_id).attempt == 3  # no write
    given_back = _create(store, model=False)
    for _ in range(3):  # each attempt handed back on shutdown: not a death
        assert store.requeue(given_back, store.start(given_back, "w", 3))
    assert store.start(given_back, "w", 3) == 4


def test_a_tenant_may_hold_only_so_many_unfinished_jobs(parts):
    client, keys, store, _ = parts

    def create(tenant: str) -> str:
        return _evaluation(store, tenant, max_active=2)

    first, second = create("a"), create("a")
    with pytest.raises(TooManyJobs, match=r"its limit of queued or running jobs \(2\)"):
        create("a")
    assert create("b")  # another tenant is not affected
    assert store.cancel(first) == "cancelled"  # a finished job frees its place
    third = create("a")
    attempt = store.start(third, "w1", 3)
    assert store.finish(third, attempt, JobState.SUCCEEDED) == "succeeded"
    create("a")
    client.delete(keys.job(second))  # an expired record frees its place too
    create("a")
    with pytest.raises(TooManyJobs):
        create("a")


def test_tenants_take_turns_whatever_their_backlog(parts):
    _, _, store, queue = parts
    queue.ensure_group()

    def create(tenant: str) -> str:
        return _evaluation(store, tenant)

    a_jobs = [create("a") for _ in range(5)]  # the first is dispatched at once
    b_job, c_job = create("b"), create("c")
    order = []
    while delivery := queue.next("w", block_ms=10):
        order.append(delivery.job_id)
        queue.ack(delivery.entry_id)
    assert order == [a_jobs[0], b_job, c_job, *a_jobs[1:]], order
    assert queue.depth_by_state() == (0, 0)
    later = [create("a"), create("a")]
    newcomer = create("d")  # joins before "a", the tenant served last
    order = []
    while delivery := queue.next("w", block_ms=10):
        order.append(delivery.job_id)
        queue.ack(delivery.entry_id)
    assert order == [later[0], newcomer, later[1]], order


def test_an_acked_entry_left_in_the_stream_never_blocks_dispatch(parts):
    client, keys, store, queue = parts
    queue.ensure_group()
    first = _evaluation(store, "a")
    delivered = queue.next("w", block_ms=10)
    assert delivered.job_id == first
    client.xack(keys.stream, WORKER_GROUP, delivered.entry_id)  # the XDEL never came
    second = _evaluation(store, "b")
    assert queue.next("w", block_ms=10).job_id == second


def test_a_cancel_asked_while_running_ends_the_job_when_given_back_or_taken_over(parts):
    client, keys, store, _ = parts
    given_back = _create(store)
    attempt = store.start(given_back, "w1", 3)
    assert store.cancel(given_back) == "running"
    assert store.requeue(given_back, attempt)  # shutdown came before the next progress call
    assert store.get(given_back).state == JobState.CANCELLED
    assert client.hget(keys.model("model_x"), "state") == b"cancelled"
    taken_over = _create(store, model=False)
    store.start(taken_over, "w1", 3)
    assert store.cancel(taken_over) == "running"
    assert store.start(taken_over, "w2", 3) is None  # its worker died: no second attempt
    assert store.get(taken_over).state == JobState.CANCELLED
