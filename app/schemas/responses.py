"""The JSON the API answers on success, as pydantic models for the OpenAPI document.

The routes build plain dicts (or JSONResponse) and declare these with ``responses=``, so they
document without filtering: a field a route adds and no model names is answered all the same,
and the schema test (tests/app/test_schema_fuzz.py) fails on it. ``Closed`` models say so with
``additionalProperties: false``; ``Open`` ones allow fields beyond those named (records of free
form: a robustness report, a tenant's base model, a job's progress).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.job_record import JobRecord
from common.keys import JobKind, JobState, ModelState, ReportState
from common.model_record import ModelRecord


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# operations


class Health(Closed):
    status: Literal["ok"]


class Ready(Closed):
    status: Literal["ready"]
    redis: bool
    base_models: bool
    workers: int = Field(description="workers whose heartbeat is fresh")


# jobs


class JobProgress(Open):
    step: int
    total: int = Field(description="0 until the worker knows the job's size")
    phase: str | None = Field(None, description="what the job is doing, in words")
    queue_position: int | None = Field(None, description="jobs ahead of it while queued")
    seconds_left: float | None = Field(None, description="estimate; null when unknown")


class JobError(Open):
    code: str
    message: str


class Job(Closed):
    job_id: str
    kind: JobKind
    state: JobState
    model_id: str | None = Field(
        description="the model an adaptation makes or an evaluation "
        "measures; null for a meta-training"
    )
    progress: JobProgress
    attempt: int = Field(description="how many times a worker started it")
    cancel_requested: bool
    created: float | None = Field(description="unix seconds")
    started: float | None
    finished: float | None
    run_seconds: float | None
    model_ready: float | None = Field(
        None,
        description="unix seconds an adaptation published its model: predictions work from "
        "then on, while the job goes on computing the report",
    )
    error: JobError | None
    status_url: str
    model_url: str | None = Field(
        None, description="an adaptation's model, once published (model_ready)"
    )
    result: dict[str, Any] | None = Field(
        None, description="a succeeded evaluation's report (null once expired)"
    )

    @classmethod
    def from_record(cls, job: JobRecord, progress: dict[str, Any]) -> Job:
        """The job as the API shows it; ``model_url`` once its model is published."""
        model_url = {"model_url": f"/v1/models/{job.model_id}"} if job.published else {}
        return cls(
            job_id=job.id,
            kind=job.kind,
            state=job.state,
            model_id=job.model_id,
            progress=JobProgress(**progress),
            attempt=job.attempt,
            cancel_requested=job.cancel_requested,
            created=job.created,
            started=job.started,
            finished=job.finished,
            run_seconds=job.run_seconds,
            model_ready=job.model_ready,
            error=None if job.error is None else JobError(**job.error),
            status_url=f"/v1/jobs/{job.id}",
            **model_url,
        )


class JobList(Closed):
    jobs: list[Job] = Field(description="newest first")
    total: int = Field(description="the tenant's jobs matching the filters, all pages")


class UploadAccepted(Closed):
    """202 of an adaptation or an evaluation: the job to poll (also in ``Location``)."""

    job_id: str
    model_id: str
    status_url: str
    warnings: list[str] = Field(description="e.g. out-of-domain images that were allowed")


# models


class Model(Closed):
    model_id: str
    state: ModelState
    base_model: str
    name: str = Field(description="the name given at adaptation (empty if none)")
    description: str = Field(description="the description given at adaptation (empty if none)")
    classes: list[str]
    settings: dict[str, Any] = Field(description="the adaptation's settings")
    support_size: int
    validation_size: int
    created: float = Field(description="unix seconds")
    evicted_reason: str | None
    job_id: str | None
    warnings: list[str]
    report_summary: dict[str, Any] | None = Field(
        description="headline figures of the robustness report once ready"
    )
    report_state: ReportState | None = Field(
        None,
        description="a ready model's report: pending (its job is computing it; predictions "
        "work already), done, or unfinished (its job ended before the report; it says why)",
    )
    report_url: str | None = Field(None, description="present when ready")
    predictions_url: str | None = Field(None, description="present when ready")

    @classmethod
    def from_record(cls, record: ModelRecord) -> Model:
        """The model as the API shows it; its report's and predictions' URLs once ready."""
        urls = {}
        if record.state == ModelState.READY:
            urls = {
                "report_url": f"/v1/models/{record.id}/report",
                "predictions_url": f"/v1/models/{record.id}/predictions",
            }
        return cls(
            model_id=record.id,
            state=record.state,
            base_model=record.base_model,
            name=record.name,
            description=record.description,
            classes=list(record.classes),
            settings=json.loads(record.settings),
            support_size=record.support_size,
            validation_size=record.validation_size,
            created=record.created,
            evicted_reason=record.evicted_reason,
            job_id=record.job_id,
            warnings=list(record.warnings),
            report_summary=record.report_summary,
            report_state=record.report_progress,
            **urls,
        )


class ModelList(Closed):
    models: list[Model] = Field(description="newest first")
    total: int = Field(description="the tenant's models, all pages")


class Report(Open):
    """The robustness report (its fields: docs/robustness.md), with the model's warnings."""

    model_id: str
    warnings: list[str]


class Ranked(Closed):
    label: str
    probability: float


class PredictionRobustness(Closed):
    attack: str
    eps: float
    label_survives: bool


class Prediction(Closed):
    label: str
    top: list[Ranked] = Field(description="top_k classes, most probable first")
    robustness: PredictionRobustness | None = Field(None, description="with robustness=true")
    in_domain: bool | None = Field(
        description="null when the base model has no out-of-domain detector"
    )
    domain_warning: str | None = Field(None, description="present when in_domain is false")


class Predictions(Closed):
    model_id: str
    predictions: list[Prediction] = Field(description="in upload order")


# base models


class BaseModelProgress(Open):
    step: int
    total: int
    seconds_left: float | None


class BaseModelEntry(Open):
    """A shipped base model (``scope: shipped``) or one of the tenant's own (``tenant``: its
    record, with ``state`` and, while it trains, ``progress``)."""

    name: str
    scope: Literal["shipped", "tenant"]
    state: str | None = Field(None, description="tenant's: training, ready, failed, cancelled")
    progress: BaseModelProgress | None = None
    algorithm: str | None = None
    input: dict[str, Any] | None = Field(None, description="channels, size, pixel range")
    meta_trained: dict[str, Any] | None = None
    domain: dict[str, Any] | None = Field(
        None, description="what it knows and whether it has an out-of-domain detector"
    )
    metrics: dict[str, Any] | None = None
    one_shot_adaptation: dict[str, int] | None = Field(
        None,
        description="augment and steps measured for this base model at one image per class: "
        "what a robust job that sends no adaptation setting gets, whole when it fits the "
        "limits (else the plain defaults); null: none measured, the plain defaults",
    )


class BaseModelList(Closed):
    default: str | None = Field(description="the base model used when none is named")
    base_models: list[BaseModelEntry]


class BaseModelAccepted(Closed):
    job_id: str
    name: str
    status_url: str
    split: dict[Literal["train", "val", "test"], list[str]] = Field(
        description="the archive's class names by role"
    )


# limits


class Bounds(Closed):
    min: float
    max: float


class RateUnits(Closed):
    prediction: int
    robust_prediction: int
    upload: int


class AugmentBounds(Bounds):
    images_per_step: int  # (1 + augment) x support images may not exceed this


class Limits(Closed):
    classes: Bounds
    shots_per_class: Bounds
    files_per_request: int
    bytes_per_file: int
    bytes_per_request: int
    pixels_per_image: int
    pixels_per_request: int
    image_formats: list[str]
    predict_files: int
    rate_units: RateUnits
    adapt_steps: Bounds
    eps: Bounds
    lr: Bounds
    augment: AugmentBounds


def answer(schema: BaseModel) -> dict[str, Any]:
    """The body of a response built from its schema: the fields it was given (one left out,
    such as a model's URLs before it is ready, stays out); enums stay enums (str)."""
    return schema.model_dump(exclude_unset=True)


def documented(
    model: type[BaseModel], description: str, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entry documenting a success body with ``model``."""
    return {status: {"model": model, "description": description}}
