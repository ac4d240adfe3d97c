"""Adapted models: list, show, delete, predict, robustness report, evaluations."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from app.auth import CallerDep, UploadCallerDep
from app.deps import ModelIdDep, ServicesDep
from app.domain_check import support_warnings
from app.errors import API_ERRORS, ApiError
from app.schemas.forms import EVALUATION_FORM
from app.schemas.responses import (
    Model,
    ModelList,
    Report,
    UploadAccepted,
    answer,
    documented,
)
from app.services import Services
from app.uploads import (
    read_form,
    read_labelled,
)
from common.job_errors import JobConflict, JobNotFound
from common.keys import JobKind, ModelState, ReportState
from common.model_record import ModelRecord
from common.report_plot import report_png
from models.report import unfinished_report
from models.service import EvaluateJob, encode_images

MAX_OFFSET = 1_000_000  # far above any tenant's model count; bounds what reaches Redis

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"], responses=API_ERRORS)


def _record(services: Services, model_id: str, tenant: str) -> ModelRecord:
    """The model's record; 404 when absent or another tenant's (the same answer for both)."""
    record = services.store.models.get(model_id, tenant)
    if record is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id}")
    return record


def model_view(record: ModelRecord) -> dict[str, Any]:
    return answer(Model.from_record(record))


def report_gone(services: Services, record: ModelRecord) -> str | None:
    """Why a report still pending will never come (its job's record expired, or Redis lost
    it); None while its job exists, or when the report is not pending."""
    if record.report_progress != ReportState.PENDING:
        return None
    if record.job_id and services.store.exists(record.job_id):
        return None
    return f"the report was not finished: its job {record.job_id} is gone (expired or lost)"


def settled(services: Services, record: ModelRecord) -> ModelRecord:
    """The record as it stands: a report that will never come is shown unfinished, and why."""
    why = report_gone(services, record)
    return record if why is None else record.unfinished(unfinished_report(why, None)[1])


def ready_record(services: Services, model_id: str, tenant: str) -> ModelRecord:
    record = _record(services, model_id, tenant)
    if record.state == ModelState.EVICTED:
        raise ApiError(410, "model_evicted", f"model {model_id} was {record.evicted_reason}")
    if record.state == ModelState.PENDING:
        raise ApiError(
            409,
            "model_not_ready",
            f"model {model_id} is pending; poll its job {record.job_id}",
        )
    if record.state != ModelState.READY:
        raise ApiError(
            409,
            "model_not_ready",
            f"model {model_id} is {record.state.value}: its adaptation did not finish "
            f"(job {record.job_id}); adapt again",
        )
    return record


@router.get("", response_model=None, responses=documented(ModelList, "the models, newest first"))
def list_models(
    services: ServicesDep, caller: CallerDep, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    if not 1 <= limit <= 500 or not 0 <= offset <= MAX_OFFSET:
        raise ApiError(
            422, "invalid_request", f"limit must be in 1..500 and offset in 0..{MAX_OFFSET}"
        )
    records, total = services.store.models.page(caller.tenant, offset, limit)
    return {"models": [model_view(settled(services, r)) for r in records], "total": total}


@router.get("/{model_id}", response_model=None, responses=documented(Model, "the model"))
def get_model(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> dict[str, Any]:
    return model_view(settled(services, _record(services, model_id, caller.tenant)))


@router.delete("/{model_id}", status_code=204)
def delete_model(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> Response:
    """Delete the model and all it stored; the job still adapting it or computing its
    report is cancelled."""
    record = services.store.models.delete(model_id, caller.tenant)
    if record is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id}")
    services.ready_records.drop((model_id, caller.tenant))  # other processes: within its TTL
    services.cache.drop(model_id)
    services.report_pngs.drop(model_id)
    services.report_pngs.drop(f"{model_id}:pending")
    if record.state == ModelState.PENDING or record.report_progress == ReportState.PENDING:
        _cancel_quietly(services, record.job_id or "")
    return Response(status_code=204)


def _cancel_quietly(services: Services, job_id: str) -> None:
    """Stop the job of a deleted model. Should this fail, the job still ends without writing
    anything of the model (its finishing transaction checks the model exists)."""
    try:
        services.store.cancel(job_id)
    except (JobConflict, JobNotFound):
        pass  # it ended meanwhile: nothing to stop
    except redis.RedisError as error:
        logger.warning("model deleted, but its job %s could not be cancelled: %s", job_id, error)


@router.get(
    "/{model_id}/report", response_model=None, responses=documented(Report, "the robustness report")
)
def get_report(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> dict[str, Any]:
    record = ready_record(services, model_id, caller.tenant)
    gone = report_gone(services, record)
    raw = services.store.models.report(model_id)
    if raw is None:
        raise ApiError(404, "report_not_found", f"the report of model {model_id} has expired")
    report = unfinished_report(gone, raw)[0] if gone is not None else json.loads(raw)
    return {"model_id": model_id, "warnings": list(record.warnings), **report}


@router.get(
    "/{model_id}/report.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the report chart"}},
)
def get_report_png(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> Response:
    """The report as a chart: accuracy vs eps per attack, robust vs clean-only adaptation."""
    record = settled(services, ready_record(services, model_id, caller.tenant))  # tenant's, ready
    pending = record.report_progress == ReportState.PENDING
    # a finished report never changes: drawn once, kept in the artifact store beside it until
    # deleted, and in this process; a pending one is kept apart (its chart says "being
    # computed") and never cached by clients
    cache_key = f"{model_id}:pending" if pending else model_id
    png = services.report_pngs.get(cache_key) or services.models.report_chart(record)
    if png is None:
        report = get_report(caller=caller, model_id=model_id, services=services)
        png = report_png(report, title=record.name or model_id)
        if not pending:
            services.models.keep_report_chart(record, png)
    services.report_pngs.put(cache_key, png)
    cache = "no-store" if pending else "private, max-age=60"
    return Response(png, media_type="image/png", headers={"Cache-Control": cache})


@router.post(
    "/{model_id}/evaluations",
    status_code=202,
    openapi_extra=EVALUATION_FORM,
    responses=documented(UploadAccepted, "the evaluation job, queued", 202),
)
async def create_evaluation(
    caller: UploadCallerDep, model_id: ModelIdDep, request: Request, services: ServicesDep
) -> JSONResponse:
    """Labelled images in; a job that reports the model's accuracy under attack on them."""
    record = await services.off_loop(ready_record, services, model_id, caller.tenant)
    form = await read_form(request, services.settings)
    return await services.off_loop(_create_evaluation, form, services, record, caller.tenant)


def _create_evaluation(
    form: FormData, services: Services, record: ModelRecord, tenant: str
) -> JSONResponse:
    """Decoding, checks and Redis writes of an evaluation: blocking, run off the event loop."""
    model_id = record.id
    base = services.base_model(tenant, record.base_model)
    labelled = read_labelled(
        form, "images", "labels", base.spec, services.settings, classes=list(record.classes)
    )
    if labelled is None:
        raise ApiError(422, "no_images", "send labelled images as 'images' and 'labels' fields")
    warnings = support_warnings(form, base, labelled, None)
    settings = EvaluateJob(
        attacks=services.report_attacks, time_budget_s=services.settings.report_time_budget_s
    )
    job_id = services.store.create(
        JobKind.EVALUATE,
        encode_images(labelled),
        tenant=tenant,
        base_model=record.base_model,
        settings=settings.to_json(),
        model_id=model_id,
        max_active=services.settings.max_jobs_per_tenant,
    )
    status_url = f"/v1/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "model_id": model_id, "status_url": status_url, "warnings": warnings},
        status_code=202,
        headers={"Location": status_url},
    )
