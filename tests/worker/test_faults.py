"""Faults: workers SIGKILLed at random points while 20 jobs run; every job succeeds once."""

from __future__ import annotations

import random
import time

import pytest
import redis

from common import telemetry
from common.keys import JobKind, Keys
from models.service import AdaptJob, encode_images
from tests.service_fixtures import job_store, new_model
from tests.worker.test_worker import _start_worker, _support

pytestmark = [pytest.mark.redis, pytest.mark.slow]
JOBS = 20
KILLS = 8
# not a poison-job test: takeovers of a stalled worker's job must not exhaust deliveries
MAX_DELIVERIES = 1000


def _create_jobs(settings) -> list[str]:
    store = job_store(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
    job_settings = AdaptJob(
        eps_grid=(0.0, 0.1), attacks=("fgsm", "pgd-2"), steps=40, lr=0.05, eps=0.1
    )
    return [
        store.create(
            JobKind.ADAPT,
            encode_images(_support()),
            tenant="t1",
            base_model="tiny-adml",
            settings=job_settings.to_json(),
            model_id=f"model_{n}",
            new_model=new_model(f"model_{n}", float(n)),
        )
        for n in range(JOBS)
    ]


def _jobs(client: redis.Redis, keys: Keys, job_ids: list[str]) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in client.hgetall(keys.job(job_id)).items()}
        for job_id in job_ids
    ]


def _unfinished(jobs: list[dict[str, str]]) -> int:
    return sum(job["state"] not in ("succeeded", "failed", "cancelled") for job in jobs)


def _await_a_running_job(client: redis.Redis, keys: Keys, job_ids: list[str], pid: int) -> None:
    """Until the worker ``pid`` is inside a job (not a job a killed worker left running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = _jobs(client, keys, job_ids)
        if any(_runs_on(job, pid) and int(job["step"]) > 0 for job in jobs):
            return
        if not _unfinished(jobs):
            return  # nothing left to kill mid-job; the precondition below says so
        time.sleep(0.05)
    raise AssertionError("no job started running within 120 s")


def _runs_on(job: dict[str, str], pid: int) -> bool:
    return job["state"] == "running" and job["worker"].endswith(f"-{pid}")


def test_twenty_jobs_survive_random_sigkills(settings):
    client, keys = redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix)
    job_ids = _create_jobs(settings)
    rng = random.Random(7)
    kills, killed_mid_job = 0, set()
    while kills < KILLS and _unfinished(_jobs(client, keys, job_ids)):
        worker = _start_worker(settings, max_deliveries=MAX_DELIVERIES)
        if kills % 2:  # awaited, not timed: a loaded machine still gets mid-job kills
            _await_a_running_job(client, keys, job_ids, worker.pid)
        else:  # at a random moment: start-up, between jobs or mid-job
            time.sleep(rng.uniform(0.5, 4.0))
        worker.kill()
        worker.wait()
        kills += 1
        # a job still running after its worker died was killed mid-job (none can finish it now)
        killed_mid_job |= {
            job_id
            for job_id, job in zip(job_ids, _jobs(client, keys, job_ids), strict=True)
            if job["state"] == "running"
        }
    assert killed_mid_job, "precondition: some kill landed mid-job"
    finishers = [_start_worker(settings, max_deliveries=MAX_DELIVERIES) for _ in range(2)]
    try:
        deadline = time.monotonic() + 300
        while _unfinished(jobs := _jobs(client, keys, job_ids)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for worker in finishers:
            worker.terminate()
            worker.wait(timeout=30)
    assert [job["state"] for job in jobs] == ["succeeded"] * JOBS, jobs
    counts = telemetry.job_counts(client, keys)
    assert counts[("adapt", "succeeded")] == JOBS  # each job succeeded exactly once
    attempts = {job_id: int(job["attempt"]) for job_id, job in zip(job_ids, jobs, strict=True)}
    assert all(attempts[job_id] > 1 for job_id in killed_mid_job), attempts  # taken over
    models = job_store(client, keys).models
    weights = {models.weights(f"model_{n}") for n in range(JOBS)}
    assert None not in weights and len(weights) == 1  # same input: identical results
    assert client.xlen(keys.stream) == 0
