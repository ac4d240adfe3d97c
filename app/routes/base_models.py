"""Base models: the shipped ones and a tenant's own, meta-trained on its uploaded classes."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from app.auth import Caller, CallerDep, UploadCallerDep
from app.deps import ServicesDep
from app.errors import API_ERRORS, ApiError
from app.schemas.forms import BASE_MODEL_FORM
from app.schemas.responses import BaseModelAccepted, BaseModelList, documented
from app.services import Services
from app.uploads import files_of, form_number, optional_text, read_bytes, read_form
from common.job_errors import JobConflict, JobNotFound
from common.job_record import JobRecord
from common.keys import JobKind
from common.settings import Settings
from common.tenant_base_models import (
    NAME_PATTERN,
    BaseModelNameTaken,
    BaseModelState,
    TenantBaseModel,
)
from models.data import ArchiveLimits, read_class_archive
from models.report import plural
from models.service import (
    MIN_CLASSES,
    MIN_IMAGES_PER_CLASS,
    BaseTrainJob,
    decode_classes,
    encode_images,
    split_classes,
)

logger = logging.getLogger(__name__)
ClassArchive = dict[str, list[tuple[str, bytes]]]  # class name -> [(member path, bytes)]
router = APIRouter(prefix="/v1/base-models", tags=["base models"], responses=API_ERRORS)


def _tenant_view(record: TenantBaseModel, services: Services, tenant: str) -> dict[str, Any]:
    """One of the tenant's base models as listed: its record; while it trains, its job's state
    and progress; once ready, what the base model says of itself."""
    view: dict[str, Any] = {**record.shown(), "scope": "tenant"}
    if record.state == BaseModelState.TRAINING:
        try:
            job = services.store.get(record.job_id, tenant)
        except JobNotFound:
            view["state"] = record.shown_state(None)
        else:
            view["state"] = record.shown_state(job.state)
            view["progress"] = _training_progress(job)
    elif record.state == BaseModelState.READY:
        view |= services.base_model(tenant, record.name).summary()
    return view


def _training_progress(job: JobRecord) -> dict[str, Any]:
    """Steps of the meta-training job and, once it has run some, about how long it has left."""
    step, total = job.step, job.total
    progress: dict[str, Any] = {"step": step, "total": total, "seconds_left": None}
    if job.started and step > 0:  # this attempt's pace (a resumed one restarts it)
        elapsed = time.time() - job.started
        progress["seconds_left"] = round(elapsed / step * (total - step))
    return progress


@router.get(
    "",
    response_model=None,
    responses=documented(BaseModelList, "shipped base models, then the tenant's own"),
)
def list_base_models(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    models = services.base_models
    shipped = [{**m.summary(), "scope": "shipped"} for _, m in sorted(models.by_name.items())]
    records = services.tenant_bases.records(caller.tenant)
    own = [_tenant_view(record, services, caller.tenant) for record in records]
    return {"default": models.default, "base_models": shipped + own}


@router.post(
    "",
    status_code=202,
    openapi_extra=BASE_MODEL_FORM,
    responses=documented(BaseModelAccepted, "the meta-training job, queued", 202),
)
async def create_base_model(
    request: Request, services: ServicesDep, caller: UploadCallerDep
) -> JSONResponse:
    """Upload a dataset archive; a job meta-trains a base model of your own on it (ADML)."""
    form = await read_form(request, services.settings)
    return await services.off_loop(_create, form, services, caller)


def _job_settings(form: FormData, services: Services, classes: list[str]) -> BaseTrainJob:
    name = optional_text(form, "name") or ""
    if not NAME_PATTERN.fullmatch(name):
        raise ApiError(
            422,
            "invalid_name",
            "name must be 2-40 characters of a-z, 0-9 and '-', not starting with '-'",
        )
    if name in services.base_models.by_name:
        raise ApiError(409, "name_taken", f"{name!r} is a shipped base model's name")
    description = (optional_text(form, "description") or "the uploaded images")[:200]
    settings = services.settings

    channels = form_number(form, "channels", int, 1, 3, 3)
    if channels not in (1, 3):
        raise ApiError(422, "invalid_setting", "channels must be 1 or 3")
    return BaseTrainJob(
        name=name,
        channels=channels,
        image_size=form_number(form, "image_size", int, 16, 96, 32),
        eps=form_number(form, "eps", float, 0.0, 0.3, 8 / 255),
        iterations=form_number(form, "iterations", int, 1, settings.max_meta_iterations, 1000),
        split=split_classes(classes),
        description=description,
    )


def _create(form: FormData, services: Services, caller: Caller) -> JSONResponse:
    archive = _read_archive(form, services.settings)
    job = _job_settings(form, services, list(archive))
    decoded = decode_classes(
        archive,
        channels=job.channels,
        size=job.image_size,
        max_pixels=services.settings.max_pixels,
        formats=services.settings.image_formats,
    )
    job_id = _enqueue(services, caller.tenant, job, encode_images(decoded), archive)
    status_url = f"/v1/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "name": job.name, "status_url": status_url, "split": job.split},
        status_code=202,
        headers={"Location": status_url},
    )


def _read_archive(form: FormData, settings: Settings) -> ClassArchive:
    """The form's one dataset archive, by class; 422 unless it can make a base model."""
    uploads = files_of(form, "archive")
    if len(uploads) != 1:
        raise ApiError(
            422, "no_archive", "send one 'archive' file: a zip or tar, a folder per class"
        )
    whole = settings.model_copy(update={"max_file_bytes": settings.max_request_bytes})
    data = read_bytes(uploads, whole)[0][1]  # bounded by the request's size, not an image's
    limits = ArchiveLimits(max_entries=settings.max_archive_images + 1000)
    archive = read_class_archive(data, limits)
    count = sum(len(files) for files in archive.values())
    small = [name for name, files in archive.items() if len(files) < MIN_IMAGES_PER_CLASS]
    if len(archive) < MIN_CLASSES or small or count > settings.max_archive_images:
        raise ApiError(
            422,
            "invalid_dataset",
            f"the archive has {plural(len(archive), 'class', 'classes')} and "
            f"{plural(count, 'image')}; a base model needs at "
            f"least {MIN_CLASSES} classes of at least {MIN_IMAGES_PER_CLASS} images each, and "
            f"at most {settings.max_archive_images} images"
            + (f" (too few images in {small[:5]})" if small else ""),
        )
    return archive


def _enqueue(
    services: Services,
    tenant: str,
    job: BaseTrainJob,
    payload: bytes,
    archive: ClassArchive,
) -> str:
    """Queue the meta-training job with its base model's record, in one transaction; its id.
    409 when the name is taken or the tenant has its cap of base models."""
    settings = services.settings

    def record(job_id: str) -> TenantBaseModel:
        return TenantBaseModel.training(
            job.name,
            job_id,
            classes=len(archive),
            images=sum(len(files) for files in archive.values()),
            settings={k: v for k, v in asdict(job).items() if k != "split"},
        )

    try:
        return services.store.create(
            JobKind.META_TRAIN,
            payload,
            tenant=tenant,
            base_model=job.name,
            settings=job.to_json(),
            max_active=settings.max_jobs_per_tenant,
            guard=lambda pipe: services.tenant_bases.check_free(
                pipe, tenant, job.name, settings.max_base_models_per_tenant
            ),
            extra=lambda pipe, job_id: services.tenant_bases.create_writes(
                pipe, tenant, record(job_id)
            ),
            watch=(services.keys.base_models(tenant),),
        )
    except BaseModelNameTaken as error:
        raise ApiError(409, "name_taken", str(error)) from error
    except ValueError as error:
        raise ApiError(409, "base_model_cap_reached", str(error)) from error


@router.delete("/{name}", status_code=204)
def delete_base_model(name: str, services: ServicesDep, caller: CallerDep) -> Response:
    """Delete one of your base models (its training job, if running, is cancelled). Models
    adapted from it keep working; new adaptations cannot use it."""
    if not NAME_PATTERN.fullmatch(name):
        raise ApiError(404, "base_model_not_found", f"you have no base model named {name!r}")
    record = services.tenant_bases.delete(caller.tenant, name)
    if record is None:
        raise ApiError(404, "base_model_not_found", f"you have no base model named {name!r}")
    if record.state == BaseModelState.TRAINING:
        try:
            services.store.cancel(record.job_id)
        except (JobConflict, JobNotFound):
            logger.info("base model %s deleted; its job had ended already", name)
    services.resolver.forget(caller.tenant, record)
    return Response(status_code=204)
