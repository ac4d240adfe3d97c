"""GET /v1/base-models: the initializations the service adapts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import CallerDep
from app.deps import ServicesDep
from app.errors import API_ERRORS

router = APIRouter(prefix="/v1/base-models", tags=["base models"], responses=API_ERRORS)


@router.get("")
def list_base_models(services: ServicesDep, _: CallerDep) -> dict[str, Any]:
    models = services.base_models
    return {
        "default": models.default,
        "base_models": [model.summary() for _, model in sorted(models.by_name.items())],
    }
