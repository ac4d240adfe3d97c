"""GET /v1/limits: the bounds the API enforces, so clients can check before uploading."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import CallerDep
from app.deps import ServicesDep
from app.errors import API_ERRORS
from app.routes.predictions import ROBUSTNESS_COST
from app.schemas.responses import Limits, documented
from models.service import ADAPT_LR_BOUNDS, MAX_AUGMENT

router = APIRouter(prefix="/v1/limits", tags=["limits"], responses=API_ERRORS)


@router.get("", response_model=None, responses=documented(Limits, "the bounds in force"))
def get_limits(services: ServicesDep, _: CallerDep) -> dict[str, Any]:
    settings = services.settings
    return {
        "classes": {"min": settings.min_classes, "max": settings.max_classes},
        "shots_per_class": {"min": 1, "max": settings.max_shots},
        "files_per_request": settings.max_files,
        "bytes_per_file": settings.max_file_bytes,
        "bytes_per_request": settings.max_request_bytes,
        "pixels_per_image": settings.max_pixels,
        "pixels_per_request": settings.max_request_pixels,
        "image_formats": sorted(settings.image_formats),
        "predict_files": settings.max_predict_files,
        "rate_units": {"prediction": 1, "robust_prediction": ROBUSTNESS_COST, "upload": 1},
        "adapt_steps": {"min": 0, "max": settings.max_adapt_steps},
        "eps": {"min": 0.0, "max": settings.max_eps},
        "lr": {"min": ADAPT_LR_BOUNDS[0], "max": ADAPT_LR_BOUNDS[1]},
        "augment": {"min": 0, "max": MAX_AUGMENT, "images_per_step": settings.max_files},
    }
