"""An evaluation job: accuracy of an adapted model under the attack suite on labelled images
the user sent with the job."""

from __future__ import annotations

from functools import partial

from common.job_record import JobRecord
from models.report import accuracy_under_attack, evaluation_units
from models.service import EvaluateJob, load_adapted
from worker.handlers import (
    HandlerContext,
    JobInputMissing,
    Progress,
    Publish,
    PublishModel,
    stored_input,
    tensors_of,
)


def handle_evaluate(
    ctx: HandlerContext,
    job: JobRecord,
    progress: Progress,
    _publish_model: PublishModel | None = None,
) -> Publish:
    """Accuracy of an adapted model under attack on the user's labelled images."""
    labelled, _ = stored_input(ctx, job)
    weights = ctx.models.weights(job.model_id)
    if weights is None:
        raise JobInputMissing(f"model {job.model_id} has expired or was deleted")
    model, info = load_adapted(weights, ctx.device)
    settings = EvaluateJob.from_json(job.settings)
    x, y = tensors_of(labelled, ctx.device)
    n_way = len(info["classes"])
    total = evaluation_units(settings.attacks, n_way, len(y), settings.eps_grid)
    evaluation = accuracy_under_attack(
        model,
        x,
        y,
        n_way=n_way,
        eps_grid=settings.eps_grid,
        attacks=settings.attacks,
        time_budget_s=settings.time_budget_s,
        on_progress=lambda done, phase: progress(done, total, phase),
    )
    result = {
        "model_id": job.model_id,
        "source": "labelled images sent with this evaluation",
        **evaluation,
    }

    stored = ctx.store.put_result(job.id, result)  # before the success that names it
    return Publish(job_writes=partial(ctx.store.result_writes, job_id=job.id, result=stored))
