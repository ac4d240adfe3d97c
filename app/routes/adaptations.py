"""POST /v1/adaptations: a support set in, a queued adaptation job out (202)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.client import Pipeline
from starlette.datastructures import FormData

from app.auth import Caller, UploadCallerDep
from app.deps import ServicesDep
from app.domain_check import support_warnings
from app.errors import API_ERRORS, ApiError
from app.idempotency import Claim, idempotency_key, run_once
from app.schemas.forms import ADAPTATION_CHOICES, ADAPTATION_FORM
from app.schemas.responses import UploadAccepted, documented
from app.services import Services
from app.uploads import (
    check_labels,
    files_of,
    form_number,
    labels_of,
    optional_text,
    read_form,
    read_labelled,
    texts_of,
)
from common.jobs import now
from common.keys import JobKind, ModelState, new_id
from common.model_record import ModelRecord
from common.model_store import ModelCapReached
from common.settings import Settings
from models.service import (
    ADAPT_LR_BOUNDS,
    MAX_AUGMENT,
    QUICK_REPORT_ATTACKS,
    REPORT_LEVELS,
    AdaptJob,
    BaseModel,
    LabelledImages,
    default_augment_and_steps,
    encode_images,
)

router = APIRouter(prefix="/v1/adaptations", tags=["adaptations"], responses=API_ERRORS)

# form value -> adversarial fine-tune
ADAPTATIONS = dict(zip(ADAPTATION_CHOICES, (True, False), strict=True))
# sending any of these asks for the plain adaptation, not a base model's one-shot recipe
ADAPTATION_FIELDS = ("steps", "lr", "eps", "augment")

MAX_NAME, MAX_DESCRIPTION = 100, 500  # characters of a model's name and description


def model_text(form: FormData, field: str, limit: int) -> str:
    """An optional text field of the model, trimmed; refused when too long or not printable."""
    text = (optional_text(form, field) or "").strip()
    if len(text) > limit:
        raise ApiError(422, "invalid_field", f"{field} has {len(text)} characters; at most {limit}")
    if any(not character.isprintable() for character in text):
        raise ApiError(
            422, "invalid_field", f"{field} must be printable text (no control characters)"
        )
    return text


def _choice(form, field: str, options: tuple[str, ...], default: str) -> str:
    """The form's ``field``, one of ``options`` (``default`` when absent); 422 otherwise."""
    value = optional_text(form, field) or default
    if value not in options:
        raise ApiError(
            422, "invalid_setting", f"{field} must be one of {', '.join(options)}, got {value!r}"
        )
    return value


def adapt_job(form, settings: Settings, base: BaseModel, attacks: tuple[str, ...]) -> AdaptJob:
    """Adaptation settings from the form, within bounds; eps defaults to the base model's, and
    a robust job that sends none of ADAPTATION_FIELDS gets the base model's one-shot recipe
    when every class has one image."""
    defaults = AdaptJob()
    adaptation = _choice(form, "adaptation", tuple(ADAPTATIONS), "robust")
    level = _choice(form, "report", REPORT_LEVELS, "full")
    base_eps = base.meta.eps
    asked = any(optional_text(form, field) is not None for field in ADAPTATION_FIELDS)
    one_shot = None if asked or not ADAPTATIONS[adaptation] else base.one_shot_adaptation
    shots = list(Counter(texts_of(form, "labels")).values())
    augment, steps = default_augment_and_steps(
        shots, one_shot, settings.max_files, settings.max_adapt_steps
    )
    return AdaptJob(
        steps=form_number(form, "steps", int, 0, settings.max_adapt_steps, steps),
        lr=form_number(form, "lr", float, *ADAPT_LR_BOUNDS, defaults.lr),
        eps=form_number(form, "eps", float, 0.0, settings.max_eps, base_eps),
        adversarial=ADAPTATIONS[adaptation],
        attacks=QUICK_REPORT_ATTACKS if level == "quick" else attacks,
        report=level,
        time_budget_s=settings.report_time_budget_s,
        augment=form_number(form, "augment", int, 0, MAX_AUGMENT, augment),
    )


def check_augmented_size(job: AdaptJob, support_size: int, settings: Settings) -> None:
    """An augmented step computes (1 + augment) x support images: no more than an upload's
    file limit, so augmentation cannot make a job costlier than the largest plain one."""
    per_step = (1 + job.augment) * support_size
    if per_step > settings.max_files:
        raise ApiError(
            422,
            "invalid_setting",
            f"augment={job.augment} makes {per_step} images per step from {support_size} "
            f"support images; at most {settings.max_files} (files per request)",
        )


@router.post(
    "",
    status_code=202,
    openapi_extra=ADAPTATION_FORM,
    response_model=None,
    responses=documented(UploadAccepted, "the adaptation job, queued", 202),
)
async def create_adaptation(
    request: Request, services: ServicesDep, caller: UploadCallerDep
) -> JSONResponse:
    """Validate and store a support set, enqueue its adaptation; answer 202 with the job. With
    an ``Idempotency-Key`` header, a repeat of the same request answers the first job."""
    key = idempotency_key(request)
    form = await read_form(request, services.settings)
    return await services.off_loop(
        run_once,
        services,
        caller.tenant,
        request,
        key,
        form,
        lambda claim: _create_adaptation(form, services, caller, claim),
    )


def _create_adaptation(
    form: FormData, services: Services, caller: Caller, claim: Claim | None = None
) -> JSONResponse:
    """Decoding, checks and Redis writes of an adaptation: blocking, run off the event loop."""
    settings = services.settings
    base = services.base_model(caller.tenant, optional_text(form, "base_model"))
    job_settings = adapt_job(form, settings, base, services.report_attacks)
    name = model_text(form, "name", MAX_NAME)
    description = model_text(form, "description", MAX_DESCRIPTION)
    support, validation = _labelled(form, settings, base, job_settings)
    warnings = support_warnings(form, base, support, validation)
    model = ModelRecord(
        id=new_id("model"),
        tenant=caller.tenant,
        state=ModelState.PENDING,
        created=now(),
        base_model=base.name,
        classes=tuple(support.classes),
        settings=job_settings.to_json(),
        name=name,
        description=description,
        support_size=len(support.labels),
        validation_size=0 if validation is None else len(validation.labels),
        warnings=tuple(warnings),
    )

    def answer(job_id: str) -> dict[str, Any]:
        url = f"/v1/jobs/{job_id}"
        return {"job_id": job_id, "model_id": model.id, "status_url": url, "warnings": warnings}

    def record_answer(pipe: Pipeline, job_id: str) -> None:
        if claim is not None:
            claim.answer_writes(202, answer(job_id))(pipe)

    try:
        job_id = services.store.create(
            JobKind.ADAPT,
            encode_images(support, validation),
            tenant=caller.tenant,
            base_model=base.name,
            settings=model.settings,
            new_model=model,
            model_cap=settings.max_models_per_tenant,
            max_active=settings.max_jobs_per_tenant,
            extra=record_answer,
        )
    except ModelCapReached as error:
        raise ApiError(409, "model_cap_reached", str(error)) from error
    body = answer(job_id)
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


def _labelled(
    form: FormData, settings: Settings, base: BaseModel, job_settings: AdaptJob
) -> tuple[LabelledImages, LabelledImages | None]:
    """The support set and the validation set (None when none was sent), checked and decoded."""
    images, labels = files_of(form, "images"), texts_of(form, "labels")
    if images or labels:  # a mismatch is named as such, not as a setting that counts images
        check_labels(labels, len(images), "images")
    labels_of(form, "labels", "val_labels")  # one spelling per label across both sets
    check_augmented_size(job_settings, len(images), settings)  # before decoding
    support = read_labelled(form, "images", "labels", base.spec, settings)
    if support is None:
        raise ApiError(
            422,
            "no_images",
            "send support images as repeated 'images' file fields "
            "with one 'labels' field per image",
        )
    validation = read_labelled(
        form, "val_images", "val_labels", base.spec, settings, classes=support.classes
    )
    return support, validation
