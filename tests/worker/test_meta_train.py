"""The meta-training job resumes from its last snapshot after its worker stops, publishes the
base model and its record in one transaction, and does not resurrect a deleted base model."""

from __future__ import annotations

import json

import pytest
import redis
import torch

from common.job_errors import CancelRequested
from common.job_record import JobRecord
from common.keys import JobKind, JobState
from common.tenant_base_models import BaseModelState, TenantBaseModel
from models.service import (
    BaseTrainJob,
    LabelledImages,
    decode_classes,
    encode_images,
    load_base_models,
    split_classes,
)
from tests.service_fixtures import service_stores
from tests.synthetic import shape_dataset
from worker.handlers import HandlerContext
from worker.meta_train import handle_meta_train

pytestmark = pytest.mark.redis


class Stop(Exception):
    pass


def _images() -> LabelledImages:
    dataset = shape_dataset(20, 5, size=16)
    named = {name: [(name, data) for data in files] for name, files in dataset.items()}
    return decode_classes(named, channels=3, size=16)


def _setup(settings) -> tuple[HandlerContext, str, JobRecord]:
    client = redis.Redis.from_url(settings.redis_url)
    images = _images()
    job = BaseTrainJob(
        name="shapes",
        channels=3,
        image_size=16,
        eps=0.03,
        iterations=6,
        split=split_classes(images.classes),
        width=8,
        validate_every=2,
        eval_episodes=2,
        attacks=("fgsm",),
    )
    stores = service_stores(settings, client)
    job_id = stores.jobs.create(
        JobKind.META_TRAIN,
        encode_images(images),
        tenant="t1",
        base_model="shapes",
        settings=job.to_json(),
        extra=lambda pipe, job_id: stores.tenant_bases.create_writes(
            pipe, "t1", TenantBaseModel("shapes", BaseModelState.TRAINING, job_id)
        ),
    )
    context = HandlerContext.build(
        stores, load_base_models(settings.base_models_dir), torch.device("cpu")
    )
    assert stores.jobs.start(job_id, "worker-1", 3) == 1  # as a worker starts it
    return context, job_id, stores.jobs.get(job_id)


def test_a_stopped_run_resumes_from_its_snapshot_and_publishes(settings):
    context, job_id, job = _setup(settings)

    def stop_at_five(step: int, total: int, phase: str | None = None) -> None:
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        handle_meta_train(context, job, stop_at_five)
    job = context.store.get(job_id)
    assert job.snapshot is not None and context.store.snapshot(job) is not None
    listed = context.models.artifacts.list(f"jobs/{job_id}/")
    snapshots = [b.name for b in listed if b.name.endswith(".snapshot")]
    assert snapshots == [job.snapshot.name]  # written at iterations 2 and 4: the first deleted
    shown = context.tenant_bases.record("t1", "shapes")
    assert shown.state == BaseModelState.TRAINING and shown.validation[0]["iteration"] == 4
    steps: list[tuple[int, int]] = []
    phases: list[str | None] = []

    def record_progress(step: int, total: int, phase: str | None = None) -> None:
        steps.append((step, total))
        phases.append(phase)

    assert context.store.start(job_id, "worker-2", 3) == 2  # the worker died; another resumes
    job = context.store.get(job_id)
    publish = handle_meta_train(context, job, record_progress)
    assert steps[0] == (4, 8) and steps[1] == (5, 8)  # from the snapshot, not from zero
    assert phases[1] == "meta-training: step 5 of 6"
    assert phases[-1] == "testing on unseen classes: episode 2 of 2"
    assert [s for s, _ in steps][-3:] == [6, 7, 8]  # then the 2 test episodes
    context.store.finish(job_id, 2, JobState.SUCCEEDED, extra=publish.job_writes)
    assert context.store.get(job_id).snapshot is None
    assert not [
        b for b in context.models.artifacts.list(f"jobs/{job_id}/") if ".snapshot" in b.name
    ]
    record = context.tenant_bases.record("t1", "shapes")
    assert record.state == BaseModelState.READY and record.job_id == job_id
    base = context.base_model("t1", "shapes")
    assert base.card["iterations"] == 6 and base.spec.channels == 3
    assert json.loads(json.dumps(base.card["metrics"]))["test_episodes"] == 2


def test_a_base_model_deleted_while_it_trains_is_not_published(settings):
    context, _, job = _setup(settings)
    context.tenant_bases.delete("t1", "shapes")
    stored_before = list(context.models.artifacts.list("base-models/t-t1/shapes/"))
    with pytest.raises(CancelRequested, match="deleted while it trained"):
        handle_meta_train(context, job, lambda step, total, phase=None: None)
    assert context.tenant_bases.record("t1", "shapes") is None
    assert list(context.models.artifacts.list("base-models/t-t1/shapes/")) == stored_before
