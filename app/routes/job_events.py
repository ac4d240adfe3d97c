"""Server-sent events of a job: its JSON (as ``GET /v1/jobs/{id}``) each time it changes, until
it finishes, so a page shows progress without polling. ``fetch`` reads the stream with the
API key header (``EventSource`` cannot send one).

Streams hold a connection each, so they are capped: ``STREAMS_PER_TENANT`` per tenant and a
quarter of ``max_connections`` in all, per API process (beyond: 503 ``too_many_streams``;
polling ``GET /v1/jobs/{id}`` says the same). A stream ends after ``MAX_STREAM_S``; the client
reconnects if it still wants one (and its key is checked again then).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.auth import CallerDep
from app.deps import JobIdDep, ServicesDep
from app.errors import API_ERRORS, ApiError
from app.routes.jobs import job_with_result
from app.services import Services
from common.jobs import JobNotFound
from common.keys import JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=API_ERRORS)

POLL_S = 0.25  # how often the stream reads the job record
KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
MAX_STREAM_S = 600.0  # a stream ends after this long; the client reconnects if it wants more
STREAMS_PER_TENANT = 5  # open streams of one tenant in one API process
_open: Counter[str] = Counter()  # tenant -> its open streams
_total = [0]  # open streams of all tenants


def _full(tenant: str, services: Services) -> bool:
    limit = max(1, services.settings.max_connections // 4)
    return _open[tenant] >= STREAMS_PER_TENANT or _total[0] >= limit


TOO_MANY = "too many event streams are open; poll GET /v1/jobs/{id} instead"


def _release(tenant: str) -> None:
    _open[tenant] -= 1
    _total[0] -= 1
    if _open[tenant] <= 0:
        del _open[tenant]


def _current(services: Services, job_id: str, tenant: str) -> dict[str, Any]:
    return job_with_result(services.store.get(job_id, tenant), services)


@router.get("/{job_id}/events", response_class=StreamingResponse)
async def job_events(
    caller: CallerDep, job_id: JobIdDep, services: ServicesDep
) -> StreamingResponse:
    """``event: job`` with the job's JSON whenever it changes; the stream ends once the job
    has finished (or is gone: ``event: gone``)."""
    first = await services.off_loop(_current, services, job_id, caller.tenant)  # 404 up front
    if _full(caller.tenant, services):
        raise ApiError(503, "too_many_streams", TOO_MANY, headers={"Retry-After": "5"})

    async def stream() -> AsyncIterator[str]:
        # counted once it runs (a stream never started holds nothing), checked again without an
        # await in between, so concurrent requests cannot overshoot the caps
        if _full(caller.tenant, services):
            yield f"event: refused\ndata: {json.dumps({'message': TOO_MANY})}\n\n"
            return
        _open[caller.tenant] += 1
        _total[0] += 1
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
                await anyio.sleep(POLL_S)
                try:
                    view = await services.off_loop(_current, services, job_id, caller.tenant)
                except JobNotFound:
                    yield f"event: gone\ndata: {json.dumps({'job_id': job_id})}\n\n"
                    return
        finally:
            _release(caller.tenant)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
