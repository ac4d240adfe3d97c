"""What a job's progress object says beyond its step count: what it does now (``phase``), how
many queued jobs start before it (``queue_position``), and about how long until it is done
(``seconds_left``, from the median run time of recent jobs of its kind; None when unknown)."""

from __future__ import annotations

import time
from typing import Any

from app.services import Services
from common.keys import JobState
from common.telemetry import typical_seconds


def _coarse(seconds: float) -> float:
    """Whole multiples of 5 s: an estimate, and a job's JSON (and its event stream) changes at
    most every 5 s because of it."""
    return float(max(5, 5 * round(seconds / 5)))


def progress_view(job: dict[str, str], services: Services) -> dict[str, Any]:
    step, total = int(job.get("step", 0)), int(job.get("total", 0))
    view: dict[str, Any] = {
        "step": step,
        "total": total,
        "phase": None,
        "queue_position": None,
        "seconds_left": None,
    }
    state = job["state"]
    if state not in (JobState.QUEUED, JobState.RUNNING):
        return view
    typical = typical_seconds(services.client, services.keys, job["kind"])
    if state == JobState.RUNNING:
        view["phase"] = job.get("phase") or "running"
        if typical is not None and job.get("started"):
            left = typical - (time.time() - float(job["started"]))
            view["seconds_left"] = _coarse(left) if left > 0 else None
        return view
    ahead = services.queue.jobs_ahead(job["id"], job.get("tenant", ""))
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
