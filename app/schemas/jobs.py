"""The JSON of a job (``GET /v1/jobs/{id}``, its list and its events), built from its record."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.schemas.responses import Closed, Open
from common.job_record import JobRecord
from common.keys import JobKind, JobState


class JobProgress(Open):
    step: int
    total: int = Field(description="0 until the worker knows the job's size")
    phase: str | None = Field(None, description="what the job is doing, in words")
    queue_position: int | None = Field(None, description="jobs ahead of it while queued")
    seconds_left: float | None = Field(None, description="estimate; null when unknown")


class JobError(Open):
    code: str
    message: str


# the fields of a job's JSON that are its record's as they are
JOB_FIELDS_AS_STORED = (
    "kind",
    "state",
    "model_id",
    "attempt",
    "cancel_requested",
    "created",
    "started",
    "finished",
    "run_seconds",
    "model_ready",
)


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
        stored = {name: getattr(job, name) for name in JOB_FIELDS_AS_STORED}
        return cls(
            job_id=job.id,
            progress=JobProgress(**progress),
            error=None if job.error is None else JobError(**job.error),
            status_url=f"/v1/jobs/{job.id}",
            **stored,
            **model_url,
        )


class JobList(Closed):
    jobs: list[Job] = Field(description="newest first")
    total: int = Field(description="the tenant's jobs matching the filters, all pages")
