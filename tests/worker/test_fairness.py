"""Tenants take turns: one tenant's backlog never delays another's job by more than the job
already running (real Redis, a real worker)."""

from __future__ import annotations

import pytest
import redis

from common.keys import JobKind, JobState, Keys
from models.service import AdaptJob, encode_images
from tests.service_fixtures import eventually, job_store, new_model
from tests.worker.test_worker import _support

pytestmark = pytest.mark.redis


def test_a_backlog_of_20_jobs_delays_another_tenants_job_by_one_job_at_most(settings, start_worker):
    store = job_store(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
    payload = encode_images(_support())
    job_settings = AdaptJob(
        eps_grid=(0.0, 0.1), attacks=("fgsm", "pgd-2"), steps=3, lr=0.05, eps=0.1
    )

    def create(tenant: str, n: int) -> str:
        model_id = f"model_{tenant}{n}"
        return store.create(
            JobKind.ADAPT,
            payload,
            tenant=tenant,
            base_model="tiny-adml",
            settings=job_settings.to_json(),
            model_id=model_id,
            new_model=new_model(model_id, float(n), tenant),
        )

    backlog = [create("a", n) for n in range(20)]
    other = create("b", 0)
    start_worker(settings)
    succeeded = lambda: store.get(other).state == JobState.SUCCEEDED  # noqa: E731
    eventually(succeeded, "b's job runs", timeout=120)
    started_b = store.get(other).started
    started_a = [job.started for job in map(store.get, backlog) if job.started]
    assert sum(moment < started_b for moment in started_a) <= 1, (started_a, started_b)
