"""Server-sent events of a job: its JSON (as ``GET /v1/jobs/{id}``) each time it changes, until
it finishes, so a page shows progress without polling. ``fetch`` reads the stream with the
API key header (``EventSource`` cannot send one)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.auth import CallerDep
from app.deps import JobIdDep, ServicesDep
from app.errors import API_ERRORS, ApiError
from app.routes.jobs import job_view
from app.services import Services
from common.jobs import JobNotFound
from common.keys import JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=API_ERRORS)

POLL_S = 0.25  # how often the stream reads the job record
KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
MAX_STREAM_S = 3600.0  # a stream ends after this long; the client reconnects if it wants more
MAX_STREAMS = 200  # open streams per API process; more get 503 (poll GET /v1/jobs/{id} instead)
_open_streams = [0]


def _current(services: Services, job_id: str, tenant: str) -> dict[str, Any]:
    job = services.store.get(job_id, tenant)
    return job_view(job, services)


@router.get("/{job_id}/events", response_class=StreamingResponse)
async def job_events(
    request: Request, caller: CallerDep, job_id: JobIdDep, services: ServicesDep
) -> StreamingResponse:
    """``event: job`` with the job's JSON whenever it changes; the stream ends once the job
    has finished (or is gone: ``event: gone``)."""
    if _open_streams[0] >= MAX_STREAMS:
        raise ApiError(503, "too_many_streams", "too many event streams open; poll the job")
    first = await services.off_loop(_current, services, job_id, caller.tenant)  # 404 up front

    async def stream() -> AsyncIterator[str]:
        _open_streams[0] += 1
        try:
            view, sent, started = first, "", time.monotonic()
            last_write = started
            while True:
                text = json.dumps(view)
                if text != sent:
                    yield f"event: job\ndata: {text}\n\n"
                    sent, last_write = text, time.monotonic()
                elif time.monotonic() - last_write > KEEP_ALIVE_S:
                    yield ": keep-alive\n\n"
                    last_write = time.monotonic()
                if JobState(view["state"]).finished or time.monotonic() - started > MAX_STREAM_S:
                    return
                if await request.is_disconnected():
                    return
                await anyio.sleep(POLL_S)
                try:
                    view = await services.off_loop(_current, services, job_id, caller.tenant)
                except JobNotFound:
                    yield f"event: gone\ndata: {json.dumps({'job_id': job_id})}\n\n"
                    return
        finally:
            _open_streams[0] -= 1

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
