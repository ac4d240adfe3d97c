"""The JSON the API answers on success, as pydantic models for the OpenAPI document.

The routes build plain dicts (or JSONResponse; a model's and a job's from their records:
``from_record``, then :func:`answer`) and declare these with ``responses=``, so they
document without filtering: a field a route adds and no model names is answered all the same,
and the schema test (tests/app/test_schema_fuzz.py) fails on it. ``Closed`` models say so with
``additionalProperties: false``; ``Open`` ones allow fields beyond those named (records of free
form: a robustness report, a tenant's base model, a job's progress).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.keys import ModelState, ReportState
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
    artifacts: bool = Field(description="the artifact store wrote, read and deleted a probe")
    workers: int = Field(description="workers whose heartbeat is fresh")


# uploads


class UploadAccepted(Closed):
    """202 of an adaptation or an evaluation: the job to poll (also in ``Location``)."""

    job_id: str
    model_id: str
    status_url: str
    warnings: list[str] = Field(description="e.g. out-of-domain images that were allowed")


# models


# the fields of a model's JSON that are its record's as they are
MODEL_FIELDS_AS_STORED = (
    "state",
    "base_model",
    "name",
    "description",
    "support_size",
    "validation_size",
    "created",
    "evicted_reason",
    "job_id",
    "report_summary",
)


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
        stored = {name: getattr(record, name) for name in MODEL_FIELDS_AS_STORED}
        return cls(
            model_id=record.id,
            classes=list(record.classes),
            settings=json.loads(record.settings),
            warnings=list(record.warnings),
            report_state=record.report_progress,
            **stored,
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
