"""The meta-training job: a tenant's own base model from its uploaded classes (models/own_base).

Every ``validate_every`` meta-steps the run is snapshotted to Redis; a worker that dies (or is
stopped) leaves the snapshot, and the job's next attempt resumes from it instead of from zero.
The job's success writes the base model and marks its record ready, in the transaction that
finishes the job, and deletes the snapshot.
"""

from __future__ import annotations

import time
from functools import partial

from common.job_errors import CancelRequested
from common.job_record import JobRecord
from common.tenant_base_models import TenantBaseModel
from models.service import BaseTrainJob, TrainRun, encode_base_model
from worker.handlers import HandlerContext, Progress, Publish, PublishModel, stored_input


def handle_meta_train(
    ctx: HandlerContext,
    job: JobRecord,
    progress: Progress,
    _publish_model: PublishModel | None = None,
) -> Publish:
    settings = BaseTrainJob.from_json(job.settings)
    _still_wanted(ctx, job, settings.name)
    images, _ = stored_input(ctx, job)
    run = TrainRun(settings, images, ctx.device)
    snapshot = ctx.store.snapshot(job)
    if snapshot is not None:
        run.restore(snapshot)
    total = settings.iterations + settings.eval_episodes
    progress(run.state.iteration, total, "meta-training")

    def keep(data: bytes) -> None:
        ctx.store.keep_snapshot(job.id, job.attempt, data)
        latest = run.state.validation[-1:]  # shown while it trains
        if not ctx.tenant_bases.show_validation(job.tenant, settings.name, job.id, latest):
            raise CancelRequested(f"base model {settings.name!r} was deleted while it trained")

    run.train(
        lambda step: progress(step, total, f"meta-training: step {step} of {settings.iterations}"),
        keep,
    )
    tensors, card = run.package(
        lambda done, _: progress(
            settings.iterations + done,
            total,
            f"testing on unseen classes: episode {done} of {settings.eval_episodes}",
        )
    )
    card |= {"created": time.time(), "job_id": job.id, "description": settings.description}
    stored = ctx.tenant_bases.put_weights(
        job.tenant, settings.name, encode_base_model(tensors, card)
    )  # before the record that names them
    record = _still_wanted(ctx, job, settings.name).ready(
        metrics=card["metrics"], validation=card["validation"][-1:], weights=stored
    )
    return Publish(
        job_writes=partial(ctx.tenant_bases.ready_writes, tenant=job.tenant, record=record)
    )


def _still_wanted(ctx: HandlerContext, job: JobRecord, name: str) -> TenantBaseModel:
    """The record this job trains for; CancelRequested when the tenant deleted it."""
    current = ctx.tenant_bases.record(job.tenant, name)
    if current is None or current.job_id != job.id:
        raise CancelRequested(f"base model {name!r} was deleted while it trained")
    return current
