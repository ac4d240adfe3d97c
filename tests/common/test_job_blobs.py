"""A job's blobs (input, snapshot, result) in the artifact store: written before the record names
them, freed when the job no longer needs them, never left behind by a refused job, and swept
only when no record names them. Real Redis, real folders."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from common.artifact_sweep import sweep_artifacts, take_lease
from common.artifacts import ArtifactsUnavailable, FolderStore
from common.job_errors import Superseded, TooManyJobs
from common.jobs import JobStore
from common.keys import JobKind, JobState
from common.settings import Settings
from common.stores import Stores
from common.tenant_base_models import BaseModelState, TenantBaseModel
from models.report import unfinished_report
from tests.service_fixtures import new_model

pytestmark = pytest.mark.redis


@pytest.fixture
def stores(redis_url: str, prefix: str, tmp_path: Path) -> Stores:
    settings = Settings(redis_url=redis_url, key_prefix=prefix, artifacts_url=str(tmp_path))
    return Stores.build(settings, redis.Redis.from_url(redis_url), unfinished_report)


def folder_of(stores: Stores) -> FolderStore:
    artifacts = stores.models.artifacts
    assert isinstance(artifacts, FolderStore)
    return artifacts


def blobs(stores: Stores, prefix: str = "jobs/") -> set[str]:
    return {blob.name for blob in stores.models.artifacts.list(prefix)}


def create(jobs: JobStore, payload: bytes = b"images", **caps) -> str:
    return jobs.create(
        JobKind.ADAPT,
        payload,
        tenant="t1",
        base_model="tiny-adml",
        settings="{}",
        new_model=new_model(f"model_{time.monotonic_ns()}"),
        **caps,
    )


def test_the_input_is_a_blob_until_the_job_ends(stores):
    job_id = create(stores.jobs)
    job = stores.jobs.get(job_id)
    assert job.input is not None and blobs(stores) == {job.input.name}
    assert stores.jobs.input(job) == b"images"
    assert not stores.client.exists(stores.keys.job_input(job_id))  # not in Redis
    attempt = stores.jobs.start(job_id, "w1", 3)
    assert stores.jobs.finish(job_id, attempt, JobState.FAILED) == "failed"
    assert stores.jobs.get(job_id).input is None and blobs(stores) == set()  # freed


@pytest.mark.parametrize("running", [False, True])
def test_cancel_frees_the_input(stores, running):
    job_id = create(stores.jobs)
    if running:
        stores.jobs.start(job_id, "w1", 3)
    assert stores.jobs.cancel(job_id) == ("running" if running else "cancelled")
    assert stores.jobs.get(job_id).input is None and blobs(stores) == set()


def test_a_refused_job_leaves_no_blob(stores):
    create(stores.jobs, max_active=1)
    before = blobs(stores)
    with pytest.raises(TooManyJobs):
        create(stores.jobs, b"other images", max_active=1)
    assert blobs(stores) == before


def test_a_store_that_is_down_refuses_the_job_and_writes_no_record(stores, tmp_path):
    down = tmp_path / "not-a-folder"
    down.write_bytes(b"a file where the store's folder should be")
    broken = Stores.build(
        stores.settings.model_copy(update={"artifacts_url": str(down)}), stores.client
    )
    with pytest.raises(ArtifactsUnavailable):
        create(broken.jobs)
    assert list(stores.client.scan_iter(match=f"{stores.keys.prefix}:job:*")) == []


def test_a_job_of_an_earlier_version_reads_its_input_from_redis(stores):
    job_id = create(stores.jobs)
    job = stores.jobs.get(job_id)
    stores.client.hdel(stores.keys.job(job_id), "input")  # as an earlier version wrote it
    stores.client.set(stores.keys.job_input(job_id), b"old images")
    old = stores.jobs.get(job_id)
    assert old.input is None and stores.jobs.input(old) == b"old images"
    attempt = stores.jobs.start(job_id, "w1", 3)
    stores.jobs.finish(job_id, attempt, JobState.FAILED)
    assert not stores.client.exists(stores.keys.job_input(job_id))
    assert job.input is not None and blobs(stores) == {job.input.name}  # the sweep's


def test_a_snapshot_is_named_only_by_the_running_attempt(stores):
    job_id = create(stores.jobs)
    attempt = stores.jobs.start(job_id, "w1", 3)
    stores.jobs.keep_snapshot(job_id, attempt, b"step 2")
    stores.jobs.keep_snapshot(job_id, attempt, b"step 4")
    job = stores.jobs.get(job_id)
    assert stores.jobs.snapshot(job) == b"step 4"
    assert len([name for name in blobs(stores) if name.endswith(".snapshot")]) == 1
    with pytest.raises(Superseded):
        stores.jobs.keep_snapshot(job_id, attempt - 1, b"a stale worker's")
    assert stores.jobs.snapshot(stores.jobs.get(job_id)) == b"step 4"


def test_an_evaluation_result_is_a_blob_its_success_names(stores):
    job_id = create(stores.jobs)
    attempt = stores.jobs.start(job_id, "w1", 3)
    stored = stores.jobs.put_result(job_id, {"accuracy": 0.5})

    def name_it(pipe):
        stores.jobs.result_writes(pipe, job_id, stored)

    stores.jobs.finish(job_id, attempt, JobState.SUCCEEDED, extra=name_it)
    job = stores.jobs.get(job_id)
    assert stores.jobs.result(job) == {"accuracy": 0.5} and blobs(stores) == {stored.name}


def _age(stores: Stores, names: set[str], seconds: float = 7200) -> None:
    long_ago = time.time() - seconds
    for name in names:
        os.utime(folder_of(stores).root / name, (long_ago, long_ago))


def test_the_sweep_keeps_what_records_name_in_every_folder(stores):
    running = create(stores.jobs)
    stores.jobs.start(running, "w1", 3)
    stores.jobs.keep_snapshot(running, 1, b"snapshot")
    kept = blobs(stores)  # its input and its snapshot
    expired = create(stores.jobs, b"an expired job's images")
    gone = blobs(stores) - kept
    stores.client.delete(stores.keys.job(expired))  # its record expired
    bases = stores.tenant_bases
    pipe = stores.client.pipeline()
    training = TenantBaseModel("shapes", BaseModelState.TRAINING, "job_1")
    bases.create_writes(pipe, "t1", training)
    pipe.execute()
    awaited = bases.put_weights("t1", "shapes", b"its job names them when it ends")
    ready = bases.put_weights("t1", "ready", b"named")
    pipe = stores.client.pipeline()
    bases.create_writes(pipe, "t1", TenantBaseModel("ready", BaseModelState.TRAINING, "job_2"))
    named = TenantBaseModel("ready", BaseModelState.READY, "job_2", weights=ready)
    bases.ready_writes(pipe, "t1", named)
    pipe.execute()
    deleted_base = bases.put_weights("t1", "deleted", b"its record was deleted")
    probe = stores.models.artifacts.put("health", b"a probe that died before its delete")
    young = stores.jobs.put_input("job_young", b"its record is coming")
    everything = blobs(stores, "")
    _age(stores, everything - {young.name})
    assert sweep_artifacts(stores, grace_s=3600) == len(gone) + 2
    assert blobs(stores, "") == everything - gone - {deleted_base.name, probe.name}
    assert {awaited.name, ready.name, young.name} <= blobs(stores, "")


def test_one_sweeper_at_a_time(stores):
    assert take_lease(stores, "worker-1", 60)
    assert not take_lease(stores, "worker-2", 60)
    assert stores.client.pttl(stores.keys.artifact_sweep_lease) > 0  # it expires by itself
