"""Multipart request bodies of the upload routes, as OpenAPI ``openapi_extra``.

The routes read their forms themselves (:mod:`app.uploads`), so FastAPI cannot infer these:
each one lists exactly the fields its route reads. Bounds that depend on settings are named in
the descriptions (``GET /v1/limits`` gives their values) rather than fixed here.
"""

from __future__ import annotations

from typing import Any

from common.tenant_base_models import NAME_PATTERN
from models.core import AdaptConfig
from models.service import (
    MAX_AUGMENT,
    MIN_CLASSES,
    MIN_IMAGES_PER_CLASS,
    REPORT_LEVELS,
    AdaptJob,
    BaseModel,
)

IMAGES = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "description": "image files (a format of GET /v1/limits image_formats), repeated",
}
FLAG = {"type": "boolean", "default": False}
# one field per item (labels=a, labels=b), never one comma-joined field: Swagger UI's
# "Try it out" follows the encoding object's style and explode (OpenAPI 3.1, 4.8.15)
REPEATED = {"style": "form", "explode": True}
SHIPPED_BASE_MODEL = "adml-omniglot"  # the service's default base model as shipped
ADAPTATION_CHOICES = ("robust", "clean_only")  # adversarial fine-tune, or clean only


def texts(example: list[str], description: str) -> dict[str, Any]:
    """A repeated text field (``labels``): one field per item."""
    items = {"type": "string", "minLength": 1, "maxLength": 100}
    return {"type": "array", "items": items, "example": example, "description": description}


def multipart(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required multipart/form-data body of these fields; every
    array is declared as repeated fields (:data:`REPEATED`): also an empty list of files is
    then no field at all, not one empty text field."""
    schema = {"type": "object", "required": required, "properties": properties}
    encoding = {name: REPEATED for name, field in properties.items() if field["type"] == "array"}
    media = {"schema": schema, "encoding": encoding} if encoding else {"schema": schema}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": media}}}


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
        "labels": texts(
            ["alpha", "beta"], "one label per image, same order; each a class of the model"
        ),
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
        "name": {"type": "string", "pattern": NAME_PATTERN.pattern, "example": "my-letters"},
        "description": {"type": "string", "maxLength": 200, "example": "letters I drew"},
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

ADAPTATION_FORM = multipart(
    {
        "images": {**IMAGES, "description": "support images (PNG, JPEG, ...), repeated"},
        "labels": texts(["alpha", "beta"], "one label per image, same order"),
        "val_images": {
            **IMAGES,
            "example": [],  # optional: Swagger UI sends no placeholder for an empty list
            "description": "labelled validation images for the robustness report, repeated "
            "(optional; needed for a report on a support set of one image per class)",
        },
        "val_labels": texts([], "one label per validation image, same order; support classes"),
        "base_model": {
            "type": "string",
            "default": SHIPPED_BASE_MODEL,
            "example": SHIPPED_BASE_MODEL,
            "description": "the initialization to adapt (GET /v1/base-models lists them)",
        },
        "steps": {
            "type": "integer",
            "minimum": 0,
            "default": AdaptJob.steps,
            "example": AdaptJob.steps,
            "description": "adaptation steps (at most GET /v1/limits max_adapt_steps)",
        },
        "lr": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": AdaptConfig.lr,
            "example": AdaptConfig.lr,
            "description": "SGD learning rate of the adaptation",
        },
        "eps": {
            "type": "number",
            "minimum": 0,
            "default": AdaptConfig.eps,
            "example": AdaptConfig.eps,
            "description": "L-inf budget of the FGSM copies, pixels in [0, 1]; default the base "
            "model's training eps",
        },
        "augment": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_AUGMENT,
            "default": AdaptConfig.augment,
            "example": AdaptConfig.augment,
            "description": "random affine copies (rotation, scale, shift) of each support "
            "image, drawn again at every step and fine-tuned on with their FGSM copies; "
            "(1 + augment) x support images must stay within the files-per-request limit. "
            "A robust job that sends none of steps, lr, eps and augment, for a support set "
            "of one image per class, gets its base model's one-shot recipe instead, where one "
            "was measured and it fits the limits (GET /v1/base-models: one_shot_adaptation); "
            "in Swagger UI clear those four fields to ask for it",
        },
        "adaptation": {
            "type": "string",
            "enum": list(ADAPTATION_CHOICES),
            "default": "robust",
            "description": "the adaptation the model serves: robust (clean + FGSM copies) or "
            "clean_only; the report measures both and recommends one",
        },
        "report": {
            "type": "string",
            "enum": list(REPORT_LEVELS),
            "default": "full",
            "description": "the robustness report: full (the strong attack suite), quick "
            "(FGSM and APGD-CE-20: a cheaper upper bound) or none (the model is ready "
            "sooner; its report says none was asked)",
        },
        "name": {
            "type": "string",
            "maxLength": 100,
            "example": "my letters",
            "description": "a name for the model (shown in lists)",
        },
        "description": {"type": "string", "maxLength": 500, "example": "tried from /docs"},
        "allow_out_of_domain": {
            **FLAG,
            "description": "adapt even if images look unlike the base model's training images "
            "(otherwise 422 out_of_domain); the model then carries a warning",
        },
    },
    required=["images", "labels"],
)


def describe_default_base_model(document: dict[str, Any], base: BaseModel) -> None:
    """The adaptation form in an OpenAPI ``document`` names this service's default base model
    and its eps, so the example Swagger UI fills in is one the service accepts."""
    body = document["paths"]["/v1/adaptations"]["post"]["requestBody"]
    properties = body["content"]["multipart/form-data"]["schema"]["properties"]
    properties["base_model"].update(default=base.name, example=base.name)
    properties["eps"].update(default=base.meta.eps, example=base.meta.eps)
