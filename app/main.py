"""The FastAPI application: ``uvicorn app.main:app`` (settings from the environment)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import fastapi_offline
import redis
import torch
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from app.errors import install_error_handlers
from app.limits import BodyLimitMiddleware
from app.metrics import RequestMetrics, RequestMiddleware, ServiceCollector
from app.metrics import router as metrics_router
from app.open_mode import OpenModeGuard
from app.routes import (
    adaptations,
    base_models,
    job_events,
    jobs,
    limits,
    models,
    operations,
    predictions,
)
from app.schemas.forms import describe_default_base_model
from app.services import Services
from common.artifact_health import StoreProbe, warn_if_unshared
from common.settings import Settings, get_settings
from models.service import load_base_models

logger = logging.getLogger(__name__)

# Swagger UI and ReDoc, served from a package (fastapi-offline's copies), not from a CDN
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs-assets"
# documents the API key of every /v1 route (Swagger's Authorize button); app.auth checks it,
# this never refuses anything (auto_error=False), so open mode and the JSON 401s are unchanged
API_KEY = HTTPBearer(
    scheme_name="apiKey",
    bearerFormat="fsk_...",
    description="an API key: fewshot keys create --tenant NAME (not needed in open mode, "
    "FEWSHOT_AUTH=open)",
    auto_error=False,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; Redis is connected and base models are loaded at start-up (``settings``
    None: from the environment)."""
    app = FastAPI(
        title="robust-fewshot",
        version="0.1.0",
        summary="Robust few-shot image classification: adapt an ADML initialization to a few "
        "labelled images, predict, and get an honest adversarial-robustness report.",
        lifespan=partial(lifespan, settings),
        docs_url=None,  # both served below from local assets
        redoc_url=None,
    )
    install_error_handlers(app)
    request_metrics = RequestMetrics()
    app.state.request_metrics = request_metrics
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(OpenModeGuard)
    app.add_middleware(RequestMiddleware, metrics=request_metrics)
    for module in (base_models, adaptations, jobs, job_events, models, predictions, limits):
        app.include_router(module.router, dependencies=[Depends(API_KEY)])
    app.include_router(metrics_router)
    add_console(app)
    app.include_router(operations.router)
    add_docs(app)
    return app


@asynccontextmanager
async def lifespan(settings: Settings | None, app: FastAPI) -> AsyncIterator[None]:
    """The process's services (``app.state.services``) while the app runs."""
    chosen = settings or get_settings()
    torch.set_num_threads(torch_threads(chosen))
    client = redis.Redis.from_url(chosen.redis_url)
    base = load_base_models(chosen.base_models_dir, chosen.default_base_model)
    services = Services(chosen, client, base)
    if base.default is not None:  # the adaptation form's example: a base model it has
        describe_default_base_model(app.openapi(), base.get(None))
    services.queue.ensure_group()
    app.state.services = services
    app.state.artifact_probe = StoreProbe(services.models.artifacts)  # for /readyz
    warn_if_unshared(chosen)
    registry = app.state.request_metrics.registry
    collector = ServiceCollector(services)
    registry.register(collector)
    logger.info(
        "api ready: %d base model(s), redis %s, %d torch thread(s)",
        len(base.by_name),
        chosen.redis_url,
        torch.get_num_threads(),
    )
    if chosen.auth == "open":
        logger.warning(
            "AUTH IS OFF (FEWSHOT_AUTH=open): every caller is tenant 'local'; "
            "use it on your own machine only"
        )
    yield
    registry.unregister(collector)
    services.close()
    client.close()


def add_console(app: FastAPI) -> None:
    """The web console at / (plain HTML/CSS/JS, no CDN: works offline)."""
    console = Path(__file__).resolve().parent / "console"
    app.mount("/console", StaticFiles(directory=console), name="console")

    @app.get("/", include_in_schema=False)
    def console_page() -> FileResponse:
        """The web console (plain HTML/CSS/JS, no CDN: works offline)."""
        return FileResponse(console / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(console / "favicon.svg", media_type="image/svg+xml")


def torch_threads(settings: Settings) -> int:
    """torch's threads in this API process: the setting, else the cores it may run on divided
    among the API processes (each process's inference threads then never oversubscribe)."""
    if settings.torch_threads:
        return settings.torch_threads
    return max(1, len(os.sched_getaffinity(0)) // settings.api_processes)


def add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) with their scripts and styles served by the app
    itself: both work without internet."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{DOCS_ASSETS_URL}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )


app = create_app()
