"""GET /healthz and /readyz: whether the process is alive, and whether it can serve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.deps import ServicesDep
from app.errors import error_response, error_responses
from app.schemas.responses import Health, Ready, documented

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=None, responses=documented(Health, "alive"))
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses=documented(Ready, "ready") | error_responses(503),
)
def readyz(request: Request, services: ServicesDep, workers: bool = True) -> Any:
    """Redis answers, base models are loaded, the artifact store takes, gives back and
    deletes a tiny blob (within 3 s), a worker sent a heartbeat recently (``?workers=false``:
    not asked; what a load balancer in front of API replicas wants, so predictions go on
    while workers restart)."""
    services.client.ping()
    live = services.stores.live_workers()
    problem = request.app.state.artifact_probe.problem()
    checks = {
        "redis": True,
        "base_models": bool(services.base_models.by_name),
        "artifacts": problem is None,
        "workers": live,
    }
    if problem is not None:
        return error_response(503, "not_ready", f"not ready: {problem}; {checks}")
    if not checks["base_models"] or (workers and not live):
        return error_response(503, "not_ready", f"not ready: {checks}")
    return {"status": "ready", **checks}
