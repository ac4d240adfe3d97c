"""Adapted models: list, show, delete, predict, robustness report, evaluations."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
import torch
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from app.auth import Caller, CallerDep, PredictCallerDep, UploadCallerDep, charge
from app.deps import ModelIdDep, ServicesDep
from app.domain_check import support_warnings
from app.errors import API_ERRORS, ApiError
from app.schemas.forms import EVALUATION_FORM, PREDICTION_FORM
from app.schemas.responses import (
    Model,
    ModelList,
    Predictions,
    Report,
    UploadAccepted,
    documented,
)
from app.services import Services
from app.uploads import (
    decode_files,
    files_of,
    form_number,
    optional_text,
    read_form,
    read_labelled,
)
from common.jobs import JobConflict, JobNotFound
from common.keys import JobKind, ModelState
from common.report_plot import report_png
from common.tenant_base_models import BaseModelUnavailable
from models.artifacts import encode_images
from models.base_models import BaseModel, UnknownBaseModel
from models.checkpoint import CheckpointError
from models.decode import InputSpec
from models.predict import predict as predict_images
from models.service_jobs import PREDICT_ATTACK, EvaluateJob

MAX_OFFSET = 1_000_000  # far above any tenant's model count; bounds what reaches Redis

logger = logging.getLogger(__name__)
# a robustness prediction runs PREDICT_ATTACK: a forward and a backward pass per step, per image
ROBUSTNESS_COST = 1 + 2 * PREDICT_ATTACK.budget  # rate-limit units (a plain request: 1)
router = APIRouter(prefix="/v1/models", tags=["models"], responses=API_ERRORS)


def _record(services: Services, model_id: str, tenant: str) -> dict[str, str]:
    """The model's record; 404 when absent or another tenant's (the same answer for both)."""
    record = services.store.models.get(model_id, tenant)
    if record is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id}")
    return record


def model_view(record: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "model_id": record["id"],
        "state": record["state"],
        "base_model": record["base_model"],
        "name": record.get("name", ""),
        "description": record.get("description", ""),
        "classes": json.loads(record["classes"]),
        "settings": json.loads(record["settings"]),
        "support_size": int(record.get("support_size", 0)),
        "validation_size": int(record.get("validation_size", 0)),
        "created": float(record["created"]),
        "evicted_reason": record.get("evicted_reason"),
        "job_id": record.get("job_id"),
        "warnings": json.loads(record.get("warnings") or "[]"),
        "report_summary": json.loads(record["report_summary"])
        if record.get("report_summary")
        else None,
    }
    if record["state"] == ModelState.READY:
        view["report_url"] = f"/v1/models/{record['id']}/report"
        view["predictions_url"] = f"/v1/models/{record['id']}/predictions"
    return view


def _ready(services: Services, model_id: str, tenant: str) -> dict[str, str]:
    record = _record(services, model_id, tenant)
    if record["state"] == ModelState.EVICTED:
        raise ApiError(410, "model_evicted", f"model {model_id} was {record['evicted_reason']}")
    if record["state"] != ModelState.READY:
        raise ApiError(
            409,
            "model_not_ready",
            f"model {model_id} is {record['state']}; poll its job {record.get('job_id')}",
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
    return {"models": [model_view(record) for record in records], "total": total}


@router.get("/{model_id}", response_model=None, responses=documented(Model, "the model"))
def get_model(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> dict[str, Any]:
    return model_view(_record(services, model_id, caller.tenant))


@router.delete("/{model_id}", status_code=204)
def delete_model(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> Response:
    """Delete the model and all it stored; a pending model's adaptation is cancelled."""
    record = services.store.models.delete(model_id, caller.tenant)
    if record is None:
        raise ApiError(404, "model_not_found", f"no model with id {model_id}")
    services.cache.drop(model_id)
    services.report_pngs.drop(model_id)
    if record["state"] == ModelState.PENDING:
        _cancel_quietly(services, record["job_id"])
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
    record = _ready(services, model_id, caller.tenant)
    raw = services.store.models.report(model_id)
    if raw is None:
        raise ApiError(404, "report_not_found", f"the report of model {model_id} has expired")
    warnings = json.loads(record.get("warnings") or "[]")
    return {"model_id": model_id, "warnings": warnings, **json.loads(raw)}


@router.get(
    "/{model_id}/report.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the report chart"}},
)
def get_report_png(caller: CallerDep, model_id: ModelIdDep, services: ServicesDep) -> Response:
    """The report as a chart: accuracy vs eps per attack, robust vs clean-only adaptation."""
    _ready(services, model_id, caller.tenant)  # the tenant's, and ready
    png = services.report_pngs.get(model_id)
    if png is None:  # a ready model's report never changes: drawn once, kept until deleted
        report = get_report(caller=caller, model_id=model_id, services=services)
        png = report_png(report, title=f"model {model_id}")
        services.report_pngs.put(model_id, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.post(
    "/{model_id}/predictions",
    openapi_extra=PREDICTION_FORM,
    response_model=None,
    responses=documented(Predictions, "one prediction per image, in upload order"),
)
async def predict(
    caller: PredictCallerDep, model_id: ModelIdDep, request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Labels and top-k probabilities in upload order; optionally whether each label survives
    an attack at ``eps`` (``robustness=true``; which one: PREDICT_ATTACK)."""
    await services.off_loop(_ready, services, model_id, caller.tenant)
    form = await read_form(request, services.settings)
    return await services.off_loop(_predict_form, form, services, model_id, caller)


def _predict_form(
    form: FormData, services: Services, model_id: str, caller: Caller
) -> dict[str, Any]:
    """Checks, decoding and the forward pass of a prediction: blocking, run off the loop."""
    settings = services.settings
    files = files_of(form, "images")
    if not files:
        raise ApiError(422, "no_images", "send images as repeated 'images' file fields")
    if len(files) > settings.max_predict_files:
        raise ApiError(
            413,
            "too_many_files",
            f"{len(files)} images; the limit is {settings.max_predict_files} per request",
        )
    robustness = (optional_text(form, "robustness") or "false").lower()
    if robustness not in ("true", "false", "1", "0"):
        raise ApiError(422, "invalid_setting", "robustness must be true or false")
    robust = robustness in ("true", "1")
    eps = form_number(form, "eps", float, 0.0, settings.max_eps, 0.1)
    top_k = form_number(form, "top_k", int, 1, 50, 3)
    if robust:  # an attack per image: charged by its cost (1 unit is paid)
        charge(services, caller, "predictions", ROBUSTNESS_COST - 1)
    loaded = services.cache.load(model_id, lambda: services.store.models.weights(model_id))
    if loaded is None:
        raise ApiError(404, "model_not_found", f"the weights of model {model_id} have expired")
    model, info = loaded
    spec = InputSpec(**info["spec"])
    images = torch.from_numpy(decode_files(files, spec, settings))
    base = _base_of(services, caller.tenant, info)
    verdicts = None if base is None or base.spec != spec else base.check_domain(images)
    predictions = predict_images(
        model,
        images,
        info["classes"],
        top_k=top_k,
        robustness_eps=eps if robust else None,
    )
    for prediction, verdict in zip(predictions, verdicts or [None] * len(predictions), strict=True):
        prediction["in_domain"] = None if verdict is None else verdict.in_domain
        if verdict is not None and not verdict.in_domain:
            prediction["domain_warning"] = verdict.reason
    return {"model_id": model_id, "predictions": predictions}


def _base_of(services: Services, tenant: str, info: dict[str, Any]) -> BaseModel | None:
    """The base model a model was adapted from, if it is still the same one (a tenant may
    delete a base model and make another of the same name); None when it is gone."""
    try:
        base = services.base_model(tenant, info["base_model"])
    except (UnknownBaseModel, BaseModelUnavailable):
        return None
    except CheckpointError as error:
        logger.error("base model %s of tenant %s unreadable: %s", info["base_model"], tenant, error)
        return None
    same = info.get("base_identity", base.identity) == base.identity
    return base if same else None


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
    record = await services.off_loop(_ready, services, model_id, caller.tenant)
    form = await read_form(request, services.settings)
    return await services.off_loop(_create_evaluation, form, services, record, caller.tenant)


def _create_evaluation(
    form: FormData, services: Services, record: dict[str, str], tenant: str
) -> JSONResponse:
    """Decoding, checks and Redis writes of an evaluation: blocking, run off the event loop."""
    model_id = record["id"]
    classes = json.loads(record["classes"])
    base = services.base_model(tenant, record["base_model"])
    labelled = read_labelled(
        form, "images", "labels", base.spec, services.settings, classes=classes
    )
    if labelled is None:
        raise ApiError(422, "no_images", "send labelled images as 'images' and 'labels' fields")
    warnings = support_warnings(form, base, labelled, None)
    job_id = services.store.create(
        JobKind.EVALUATE,
        encode_images(labelled),
        {
            "model_id": model_id,
            "base_model": record["base_model"],
            "settings": EvaluateJob(
                attacks=services.report_attacks,
                time_budget_s=services.settings.report_time_budget_s,
            ).to_json(),
        },
        tenant=tenant,
        max_active=services.settings.max_jobs_per_tenant,
    )
    status_url = f"/v1/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "model_id": model_id, "status_url": status_url, "warnings": warnings},
        status_code=202,
        headers={"Location": status_url},
    )
