"""Where a queued job stands: jobs ahead of it by the fair round robin, and typical run times."""

from __future__ import annotations

import pytest
import redis

from common.keys import Keys
from common.queue import JobQueue
from common.telemetry import RECENT_RUNS, observe_seconds, typical_seconds

pytestmark = pytest.mark.redis


@pytest.fixture
def queue(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    made = JobQueue(client, Keys(prefix), claim_idle_ms=1000)
    made.ensure_group()
    return made


def _enqueue(queue: JobQueue, tenant: str, job_id: str) -> None:
    pipe = queue.client.pipeline()
    queue.enqueue_writes(pipe, tenant, job_id)
    pipe.execute()


def test_jobs_ahead_follow_the_round_robin_and_the_stream(queue):
    for job_id in ("a1", "a2", "a3"):
        _enqueue(queue, "alice", job_id)
    _enqueue(queue, "bob", "b1")
    _enqueue(queue, "bob", "b2")
    # order of service: a1 b1 a2 b2 a3 (alice joined first)
    expected = {"a1": 0, "b1": 1, "a2": 2, "b2": 3, "a3": 4}
    assert {
        job: queue.jobs_ahead(job, "alice" if job.startswith("a") else "bob") for job in expected
    } == expected
    assert queue.dispatch()  # a1 moves to the stream, waiting for a worker
    assert queue.jobs_ahead("a1", "alice") is None  # no longer in a tenant queue
    assert queue.jobs_ahead("b1", "bob") == 1  # a1, dispatched but not delivered, is ahead
    delivered = queue.next("w1", block_ms=10)
    assert delivered is not None and delivered.job_id == "a1"
    assert queue.jobs_ahead("b1", "bob") == 0
    assert queue.jobs_ahead("nope", "bob") is None


def test_typical_seconds_is_the_median_of_recent_runs(queue):
    keys, client = queue.keys, queue.client
    assert typical_seconds(client, keys, "adapt") is None
    for seconds in (10.0, 30.0):
        pipe = client.pipeline()
        observe_seconds(pipe, keys, "adapt", seconds)
        pipe.execute()
    assert typical_seconds(client, keys, "adapt") is None  # two runs are too few
    for seconds in [20.0] * (RECENT_RUNS + 5):
        pipe = client.pipeline()
        observe_seconds(pipe, keys, "adapt", seconds)
        pipe.execute()
    assert typical_seconds(client, keys, "adapt") == 20.0
    assert client.llen(keys.job_recent_seconds("adapt")) == RECENT_RUNS  # bounded
