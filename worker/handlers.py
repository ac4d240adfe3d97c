"""What a worker does with an adaptation job, and what every job handler shares (its context,
its stored input, the errors that are the job's own fault). Handlers by kind:
:mod:`worker.registry`.

Handlers are idempotent: they read the job's stored input, compute deterministically, and
return the writes that publish the result; the runner applies those writes in the same Redis
transaction that marks the job succeeded.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis
import torch

from common.artifacts import BlobRef
from common.job_record import JobRecord
from common.jobs import ExtraWrites, ModelWrites
from common.keys import ModelState
from common.stores import Stores, UsesStores
from common.tenant_base_models import (
    BaseModelResolver,
    BaseModelUnavailable,
)
from models.attacks import parse_attacks
from models.core import ConfigError
from models.data import DataError
from models.meta import adapt_and_deploy
from models.report import (
    adaptation_step_cost,
    report_summary,
    report_units,
    robustness_report,
    unavailable_report,
)
from models.service import (
    AdaptJob,
    ArtifactError,
    BaseModel,
    BaseModels,
    LabelledImages,
    UnknownBaseModel,
    decode_base_model,
    decode_images,
    encode_weights,
)

# (steps done, total steps, what the job does now in words or None); raises to stop the job
Progress = Callable[..., None]
# publishes an adaptation's model while its job goes on (JobStore.publish_model); False when
# it could not now (Redis full): the model is then published with its report at the end
PublishModel = Callable[[ModelWrites], bool]


class JobInputMissing(LookupError):
    """The job's stored input (or its model's weights) expired or was deleted."""


# the job's own fault (its input, its settings, its base model): failed as invalid_job
USER_ERRORS = (
    DataError,
    ConfigError,
    ArtifactError,
    UnknownBaseModel,
    BaseModelUnavailable,
    JobInputMissing,
)


@dataclass(frozen=True)
class Publish:
    """What a succeeded job writes, in the transaction that finishes it."""

    job_writes: ExtraWrites | None = None  # the job's own results (an evaluation's report)
    model_writes: ModelWrites | None = None  # the model it makes: only while that model exists


@dataclass(frozen=True)
class HandlerContext(UsesStores):
    """What every handler works with: the stores (common.stores), base models by name, the
    device it computes on."""

    stores: Stores
    resolver: BaseModelResolver
    device: torch.device

    @classmethod
    def build(cls, stores: Stores, shipped: BaseModels, device: torch.device) -> HandlerContext:
        return cls(stores, stores.base_model_resolver(shipped, decode_base_model), device)

    @property
    def client(self) -> redis.Redis:
        return self.stores.client

    @property
    def model_ttl_s(self) -> int:
        return self.stores.settings.model_ttl_s

    def base_model(self, tenant: str, name: str) -> BaseModel:
        return self.resolver.get(tenant, name)


def tensors_of(images: LabelledImages, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return images.images.to(device=device, dtype=torch.float32) / 255.0, images.labels.to(device)


def stored_input(
    ctx: HandlerContext, job: JobRecord
) -> tuple[LabelledImages, LabelledImages | None]:
    """The job's images (and validation images) from the artifact store."""
    data = ctx.store.input(job)
    if data is None:
        raise JobInputMissing(f"the input of job {job.id} has expired or was deleted")
    return decode_images(data)


def handle_adapt(
    ctx: HandlerContext,
    job: JobRecord,
    progress: Progress,
    publish_model: PublishModel | None = None,
) -> Publish:
    """Adapt, publish the model (through ``publish_model``: it answers predictions while the
    report is computed), then report on it. Without ``publish_model`` the model is published
    with its report when the job succeeds. An attempt that finds the model published by an
    earlier one (a worker died while reporting) goes straight to the report."""
    support, validation = stored_input(ctx, job)
    base = ctx.base_model(job.tenant, job.base_model)
    settings = AdaptJob.from_json(job.settings)
    published = publish_model is not None and _published(ctx, job)
    # progress in image-passes (models.report.cost): a step of this adaptation is ``each``
    each = adaptation_step_cost(len(support.labels), settings.adapt_config)
    steps = 0 if published else settings.adapt_config.steps * each
    total = steps + _report_units(settings, support, validation)
    weights = None  # the blob of its weights, stored before any record names it
    if not published:
        on_step = partial(_of, progress, 0, total, each=each)
        adapted = _adapt(ctx, job, base, settings, support, on_step)
        weights = ctx.models.put_weights(job.model_id or "", adapted)
    if publish_model is not None and weights is not None:
        pending = _pending_report(settings, job.id)
        if publish_model(partial(ctx.models.published_writes, weights=weights, **pending)):
            weights = None  # published: the job's success writes its report only
    report = _report(ctx, base, settings, support, validation, partial(_of, progress, steps, total))
    return Publish(model_writes=_model_writes(ctx, job.model_id or "", weights, report))


def _of(progress: Progress, offset: int, total: int, done: int, phase: str, each: int = 1) -> None:
    """Report ``done`` steps (of ``each`` units) of a part of a job that starts at ``offset``."""
    progress(offset + done * each, total, phase)


def _published(ctx: HandlerContext, job: JobRecord) -> bool:
    """Whether an earlier attempt of the job published its model already."""
    return ctx.models.owned_state(job.model_id or "", job.id) == ModelState.READY


def _report_units(
    settings: AdaptJob, support: LabelledImages, validation: LabelledImages | None
) -> int:
    """Progress steps of the job's report (none for report=none)."""
    if settings.report == "none":
        return 0
    held = 0 if validation is None else len(validation.labels)
    return report_units(
        support.labels,
        len(support.classes),
        held,
        settings.attacks,
        settings.adapt_config,
        settings.eps_grid,
    )


def _adapt(
    ctx: HandlerContext,
    job: JobRecord,
    base: BaseModel,
    settings: AdaptJob,
    support: LabelledImages,
    on_progress: Callable[[int, str], None],
) -> bytes:
    """The adapted model's weights (safetensors). The job's own random draws (affine copies,
    random starts): an attempt after a dead worker adapts to the same weights."""
    config = settings.adapt_config
    on_progress(0, "adapting")
    x, y = tensors_of(support, ctx.device)
    torch.manual_seed(int.from_bytes(hashlib.sha256(job.id.encode()).digest()[:8], "big"))
    deployed = adapt_and_deploy(
        base.backbone,
        base.tensors,
        x,
        y,
        n_way=len(support.classes),
        adapt_config=config,
        head_init=base.meta.head_init,
        on_step=lambda step, *_: on_progress(step, f"adapting: step {step} of {config.steps}"),
    )
    return encode_weights(deployed.state_dict(), _model_info(base, support))


def _model_writes(
    ctx: HandlerContext, model_id: str, weights: BlobRef | None, report: dict[str, Any]
) -> ModelWrites:
    """What the job's success writes of its model: its report (a blob, stored now, before the
    transaction that names it), and its weights unless published already (``weights``
    None)."""
    summary = report_summary(report)
    stored = ctx.models.put_report(model_id, report)

    def publish(pipe: redis.client.Pipeline, model_id: str) -> None:
        if weights is None:  # published already
            ctx.models.report_writes(pipe, model_id, stored, summary)
        else:
            ctx.models.published_writes(pipe, model_id, weights, stored, summary, done=True)

    return publish


def _model_info(base: BaseModel, support: LabelledImages) -> dict[str, Any]:
    return {
        "backbone": dataclasses.asdict(base.backbone),
        "classes": support.classes,
        "base_model": base.name,
        "base_identity": base.identity,  # a later base model of the same name is another one
        "spec": dataclasses.asdict(base.spec),
    }


def _pending_report(settings: AdaptJob, job_id: str) -> dict[str, Any]:
    """The report and summary a model shows while its job computes the report."""
    if settings.report == "none":
        text = "No robustness report was asked for (report=none); it is being written."
    else:
        text = f"The {settings.report} robustness report is being computed by job {job_id}."
    suite = parse_attacks(settings.attacks)
    report = unavailable_report(text, settings.eps_grid, suite, settings.adapt_config, text=text)
    report |= {"pending": True, "level": settings.report}
    return {"report": report, "summary": report_summary(report)}


def _report(
    ctx: HandlerContext,
    base: BaseModel,
    settings: AdaptJob,
    support: LabelledImages,
    validation: LabelledImages | None,
    on_progress: Callable[[int, str], None],
) -> dict[str, Any]:
    """The report the job asked for (full, quick or none), with its level stated."""
    if settings.report == "none":
        reason = "none was asked for (report=none); adapt again with report=quick or full"
        suite = parse_attacks(settings.attacks)
        report = unavailable_report(reason, settings.eps_grid, suite, settings.adapt_config)
    else:
        x, y = tensors_of(support, ctx.device)
        no_validation = (None, None)
        x_val, y_val = (
            tensors_of(validation, ctx.device) if validation is not None else no_validation
        )
        report = robustness_report(
            base.backbone,
            base.tensors,
            x,
            y,
            n_way=len(support.classes),
            adapt_config=settings.adapt_config,
            head_init=base.meta.head_init,
            x_val=x_val,
            y_val=y_val,
            eps_grid=settings.eps_grid,
            attacks=settings.attacks,
            time_budget_s=settings.time_budget_s,
            on_progress=on_progress,
        )
    report["level"] = settings.report  # full (the operator's suite), quick or none
    if settings.report == "quick" and report["available"]:
        report["summary"]["text"] += (
            f" This is a quick report ({', '.join(settings.attacks)} only); "
            "report=full runs the strong suite."
        )
    return report
