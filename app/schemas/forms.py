"""Multipart request bodies of the upload routes, as OpenAPI ``openapi_extra``.

The routes read their forms themselves (:mod:`app.uploads`), so FastAPI cannot infer these:
each one lists exactly the fields its route reads. Bounds that depend on settings are named in
the descriptions (``GET /v1/limits`` gives their values) rather than fixed here.
"""

from __future__ import annotations

from typing import Any

from common.tenant_base_models import NAME_PATTERN
from models.service import MIN_CLASSES, MIN_IMAGES_PER_CLASS

IMAGES = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "description": "image files (a format of GET /v1/limits image_formats), repeated",
}
FLAG = {"type": "boolean", "default": False}


def multipart(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required multipart/form-data body of these fields."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


PREDICTION_FORM = multipart(
    {
        "images": {
            **IMAGES,
            "description": "the images to classify, repeated (at most GET /v1/limits "
            "predict_files); answers come in the same order",
        },
        "robustness": {
            **FLAG,
            "description": "also say whether each label survives an attack at eps (costs "
            "GET /v1/limits rate_units.robust_prediction units)",
        },
        "eps": {
            "type": "number",
            "minimum": 0,
            "default": 0.1,
            "description": "L-inf budget of the robustness attack, pixels in [0, 1] (at most "
            "GET /v1/limits eps.max); read only with robustness=true",
        },
        "top_k": {
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "default": 3,
            "description": "classes listed per image, most probable first",
        },
    },
    required=["images"],
)

EVALUATION_FORM = multipart(
    {
        "images": {**IMAGES, "description": "labelled images to evaluate on, repeated"},
        "labels": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "description": "one label per image, same order; each a class of the model",
        },
        "allow_out_of_domain": {
            **FLAG,
            "description": "evaluate even if images look unlike the base model's training "
            "images (otherwise 422 out_of_domain); the answer then carries a warning",
        },
    },
    required=["images", "labels"],
)

BASE_MODEL_FORM = multipart(
    {
        "archive": {
            "type": "string",
            "format": "binary",
            "description": f"zip or tar: one folder of images per class, at least "
            f"{MIN_CLASSES} classes of {MIN_IMAGES_PER_CLASS}+ images",
        },
        "name": {"type": "string", "pattern": NAME_PATTERN.pattern},
        "description": {"type": "string", "maxLength": 200},
        "channels": {"type": "integer", "enum": [1, 3], "default": 3},
        "image_size": {"type": "integer", "minimum": 16, "maximum": 96, "default": 32},
        "eps": {"type": "number", "minimum": 0, "maximum": 0.3, "default": 8 / 255},
        "iterations": {
            "type": "integer",
            "minimum": 1,
            "default": 1000,
            "description": "meta-training steps (at most the service's max_meta_iterations)",
        },
    },
    required=["archive", "name"],
)
