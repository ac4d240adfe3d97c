"""The FastAPI application: ``uvicorn app.main:app`` (settings from the environment)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.deps import ServicesDep
from app.errors import error_response, error_responses, install_error_handlers
from app.limits import BodyLimitMiddleware
from app.metrics import RequestMetrics, RequestMiddleware, ServiceCollector
from app.metrics import router as metrics_router
from app.open_mode import OpenModeGuard
from app.routes import adaptations, base_models, jobs, limits, models
from app.services import Services
from common.settings import Settings, get_settings
from models.base_models import load_base_models

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; Redis is connected and base models are loaded at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = settings or get_settings()
        client = redis.Redis.from_url(chosen.redis_url)
        base = load_base_models(chosen.base_models_dir, chosen.default_base_model)
        services = Services(chosen, client, base)
        services.queue.ensure_group()
        app.state.services = services
        collector = ServiceCollector(services)
        request_metrics.registry.register(collector)
        logger.info("api ready: %d base model(s), redis %s", len(base.by_name), chosen.redis_url)
        if chosen.auth == "open":
            logger.warning(
                "AUTH IS OFF (FEWSHOT_AUTH=open): every caller is tenant 'local'; "
                "use it on your own machine only"
            )
        yield
        request_metrics.registry.unregister(collector)
        client.close()

    app = FastAPI(
        title="robust-fewshot",
        version="0.1.0",
        summary="Robust few-shot image classification: adapt an ADML initialization to a few "
        "labelled images, predict, and get an honest adversarial-robustness report.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    request_metrics = RequestMetrics()
    app.state.request_metrics = request_metrics
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(OpenModeGuard)
    app.add_middleware(RequestMiddleware, metrics=request_metrics)
    for module in (base_models, adaptations, jobs, models, limits):
        app.include_router(module.router)
    app.include_router(metrics_router)

    console = Path(__file__).resolve().parent / "console"
    app.mount("/console", StaticFiles(directory=console), name="console")

    @app.get("/", include_in_schema=False)
    def console_page() -> FileResponse:
        """The web console (plain HTML/CSS/JS, no CDN: works offline)."""
        return FileResponse(console / "index.html")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses=error_responses(503))
    def readyz(services: ServicesDep) -> Any:
        """Redis answers, base models are loaded, a worker sent a heartbeat recently."""
        services.client.ping()
        live = services.client.zcount(
            services.keys.workers,
            "(" + str(time.time() - 3 * services.settings.heartbeat_s),
            "+inf",
        )
        checks = {
            "redis": True,
            "base_models": bool(services.base_models.by_name),
            "workers": int(live),
        }
        if not checks["base_models"] or not live:
            return error_response(503, "not_ready", f"not ready: {checks}")
        return {"status": "ready", **checks}

    return app


app = create_app()
