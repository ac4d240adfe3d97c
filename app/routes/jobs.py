"""Jobs: list them, poll the state and progress of one, cancel it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import CallerDep
from app.deps import JobIdDep, ServicesDep
from app.errors import API_ERRORS, ApiError
from app.job_progress import progress_view
from app.schemas.jobs import Job, JobList
from app.schemas.responses import answer, documented
from app.services import Services
from common.job_index import LISTED_STATES, MAX_OFFSET
from common.job_record import JobRecord
from common.keys import JobKind, JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=API_ERRORS)


def job_view(job: JobRecord, services: Services) -> dict[str, Any]:
    """The public JSON of a job record."""
    return answer(Job.from_record(job, progress_view(job, services)))


MAX_PAGE = 100  # jobs per page (each carries its progress, queue place included)


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if value is None:
        return allowed
    if value not in allowed:
        raise ApiError(422, "invalid_request", f"{name} must be one of {', '.join(allowed)}")
    return (value,)


@router.get("", response_model=None, responses=documented(JobList, "the jobs, newest first"))
def list_jobs(
    caller: CallerDep,
    services: ServicesDep,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """The tenant's jobs (finished ones until they expire), optionally of one ``state`` and
    ``kind``, newest first."""
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
        raise ApiError(
            422, "invalid_request", f"limit must be in 1..{MAX_PAGE} and offset in 0..{MAX_OFFSET}"
        )
    states = _choice(state, tuple(s.value for s in LISTED_STATES), "state")
    kinds = _choice(kind, tuple(k.value for k in JobKind), "kind")
    records, total = services.store.index.page(
        caller.tenant, offset=offset, limit=limit, kinds=kinds, states=states
    )
    return {"jobs": [job_view(record, services) for record in records], "total": total}


@router.get("/{job_id}", response_model=None, responses=documented(Job, "the job"))
def get_job(caller: CallerDep, job_id: JobIdDep, services: ServicesDep) -> dict[str, Any]:
    return job_with_result(services.store.get(job_id, caller.tenant), services)


def job_with_result(job: JobRecord, services: Services) -> dict[str, Any]:
    """The job's JSON and, for a succeeded evaluation, its result."""
    view = job_view(job, services)
    if job.kind == JobKind.EVALUATE and job.state == JobState.SUCCEEDED:
        view["result"] = services.store.result(job)
    return view


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=None,
    responses=documented(Job, "the job, cancelled or asked to stop", 202),
)
def cancel_job(caller: CallerDep, job_id: JobIdDep, services: ServicesDep) -> dict[str, Any]:
    """Cancel now when queued; a running job stops at its next step."""
    services.store.get(job_id, caller.tenant)  # another tenant's job: 404
    services.store.cancel(job_id)
    return job_view(services.store.get(job_id), services)
