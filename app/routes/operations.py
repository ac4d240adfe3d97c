"""GET /healthz and /readyz: whether the process is alive, and whether it can serve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

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
def readyz(services: ServicesDep, workers: bool = True) -> Any:
    """Redis answers, base models are loaded, a worker sent a heartbeat recently
    (``?workers=false``: not asked; what a load balancer in front of API replicas wants,
    so predictions go on while workers restart)."""
    services.client.ping()
    live = services.stores.live_workers()
    checks = {
        "redis": True,
        "base_models": bool(services.base_models.by_name),
        "workers": live,
    }
    if not checks["base_models"] or (workers and not live):
        return error_response(503, "not_ready", f"not ready: {checks}")
    return {"status": "ready", **checks}
