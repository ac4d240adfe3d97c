"""What a job's progress object says beyond its step count: what it does now (``phase``), how
many queued jobs start before it (``queue_position``), and about how long until it is done
(``seconds_left``; None when unknown). A running job's estimate comes from the median run time
of recent jobs of its kind while it is within it; otherwise (the service's first jobs, or a job
longer than most) from its own pace: the seconds its steps so far took, for the steps left."""

from __future__ import annotations

import time
from typing import Any

from app.services import Services
from common.job_record import JobRecord
from common.keys import JobState
from common.telemetry import typical_seconds


def _coarse(seconds: float) -> float:
    """Whole multiples of 5 s: an estimate, and a job's JSON (and its event stream) changes at
    most every 5 s because of it."""
    return float(max(5, 5 * round(seconds / 5)))


def progress_view(job: JobRecord, services: Services) -> dict[str, Any]:
    view: dict[str, Any] = {
        "step": job.step,
        "total": job.total,
        "phase": None,
        "queue_position": None,
        "seconds_left": None,
    }
    if job.state not in (JobState.QUEUED, JobState.RUNNING):
        return view
    typical = typical_seconds(services.client, services.keys, job.kind.value)
    if job.state == JobState.RUNNING:
        view["phase"] = job.phase or "running"
        left = _running_left(job, typical)
        view["seconds_left"] = None if left is None else _coarse(left)
        return view
    ahead = services.queue.jobs_ahead(job.id, job.tenant)
    view["queue_position"] = 0 if ahead is None else ahead
    view["phase"] = (
        "queued: waiting for a free worker"
        if not ahead
        else f"queued: {ahead} job{'s' if ahead != 1 else ''} ahead"
    )
    workers = services.stores.live_workers()
    if typical is not None and workers:
        # the jobs ahead and this one, spread over the live workers (a rough figure)
        view["seconds_left"] = _coarse(typical * (view["queue_position"] // workers + 1))
    return view


def _running_left(job: JobRecord, typical: float | None) -> float | None:
    """Seconds a running job has left: the typical run time less its time so far while that is
    positive, else its own pace once it has made a step (steps differ in cost: a rough figure)."""
    if not job.started:
        return None
    elapsed = max(time.time() - job.started, 0.0)
    if typical is not None and typical > elapsed:
        return typical - elapsed
    if job.step > 0 and job.total > job.step:
        return elapsed / job.step * (job.total - job.step)
    return None
