"""Predictions of an adapted model: images as multipart files, or as base64 in JSON."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel as Schema
from pydantic import ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from app.auth import Caller, PredictCallerDep, charge
from app.deps import ModelIdDep, ServicesDep
from app.errors import API_ERRORS, ApiError
from app.routes.models import ready_record
from app.schemas.forms import PREDICTION_FORM
from app.schemas.responses import Predictions, documented
from app.services import ServedModel, Services
from app.uploads import decode_named, files_of, form_number, optional_text, read_bytes, read_form
from common.settings import Settings
from common.tenant_base_models import BaseModelUnavailable
from models.base_models import BaseModel, UnknownBaseModel
from models.checkpoint import CheckpointError
from models.decode import InputSpec
from models.predict import answers as predict_answers
from models.predict import label_survives, probabilities
from models.service_jobs import PREDICT_ATTACK

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"], responses=API_ERRORS)

# a robustness prediction runs PREDICT_ATTACK: a forward and a backward pass per step, per image
ROBUSTNESS_COST = 1 + 2 * PREDICT_ATTACK.budget  # rate-limit units (a plain request: 1)


MAX_JSON_IMAGES = 1000  # a hard bound before the setting's (max_predict_files) is checked


class Base64Image(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=200, description="for messages and your records")
    data: str = Field(description="the image file (PNG, JPEG, ...) in base64")


class PredictionBody(Schema):
    """The JSON form of a prediction request (the same fields as the multipart form)."""

    model_config = ConfigDict(extra="forbid")
    images: list[Base64Image] = Field(min_length=1, max_length=MAX_JSON_IMAGES)
    robustness: bool = False
    eps: float = 0.1
    top_k: int = 3


# PredictionBody as OpenAPI sees it, written out: pydantic's schema refers to "#/$defs/...",
# which is no place in an OpenAPI document (ReDoc fails on it)
JSON_SCHEMA = {
    "type": "object",
    "required": ["images"],
    "additionalProperties": False,
    "properties": {
        "images": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_JSON_IMAGES,
            "items": {
                "type": "object",
                "required": ["data"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 200},
                    "data": {
                        "type": "string",
                        "description": "the image file in base64 (line breaks and a data: URL "
                        "prefix are accepted)",
                    },
                },
            },
        },
        "robustness": {"type": "boolean", "default": False},
        "eps": {"type": "number", "minimum": 0, "default": 0.1},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 3},
    },
}

REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **PREDICTION_FORM["requestBody"]["content"],
            "application/json": {"schema": JSON_SCHEMA},
        },
    }
}


@router.post(
    "/{model_id}/predictions",
    openapi_extra=REQUEST_BODY,
    response_model=None,
    responses=documented(Predictions, "one prediction per image, in upload order"),
)
async def predict(
    caller: PredictCallerDep, model_id: ModelIdDep, request: Request, services: ServicesDep
) -> JSONResponse:
    """Labels and top-k probabilities in upload order; optionally whether each label survives
    an attack at ``eps`` (``robustness=true``; which one: PREDICT_ATTACK). Send multipart
    ``images`` files, or JSON ``{"images": [{"name": ..., "data": BASE64}], ...}``."""
    await _ready(services, model_id, caller.tenant)
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        body = await _json_body(request, services.settings)
        parse = partial(_parse_json, body, services.settings)
    else:
        form = await read_form(request, services.settings)
        parse = partial(_parse_form, form, services.settings)
    prepared = await services.off_loop(_prepare, parse, services, model_id, caller)
    answers = await _answers(prepared, services)
    # already plain JSON types: no jsonable_encoder pass over every probability
    return JSONResponse({"model_id": model_id, "predictions": answers})


async def _ready(services: Services, model_id: str, tenant: str) -> None:
    """404/409/410 unless the model is ready; a ready record is trusted for
    ``model_record_cache_s`` (a deleted model stops answering within that bound)."""
    if services.ready_records.get((model_id, tenant)) is None:
        record = await services.off_loop(ready_record, services, model_id, tenant)
        services.ready_records.put((model_id, tenant), record)


async def _json_body(request: Request, settings: Settings) -> bytes:
    """The request's bytes, refused past ``max_request_bytes`` whether declared or not."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_request_bytes:
        raise ApiError(413, "request_too_large", f"the limit is {settings.max_request_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_request_bytes:
            raise ApiError(
                413, "request_too_large", f"the limit is {settings.max_request_bytes} bytes"
            )
    return bytes(body)


def _parse_json(body: bytes, settings: Settings) -> Asked:
    # structure, not size, is what makes a JSON body costly to parse (a million tiny objects):
    # base64 holds no , { or [, so a request of at most max_predict_files images has few of them
    structure = body.count(b",") + body.count(b"{") + body.count(b"[")
    if structure > 256 * (settings.max_predict_files + 2):
        raise ApiError(
            413,
            "too_many_files",
            f"the JSON body has too many items; at most {settings.max_predict_files} "
            "images per request",
        )
    try:
        parsed = PredictionBody.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}") from error
    _check_count(len(parsed.images), settings)
    named = []
    for number, image in enumerate(parsed.images, start=1):
        name = f"#{number} ({image.name or 'unnamed'})"
        text = image.data.split(",", 1)[1] if image.data.startswith("data:") else image.data
        text = "".join(text.split())  # line breaks (as `base64` writes them) are accepted
        if len(text) > 4 * (settings.max_file_bytes // 3 + 1):
            raise ApiError(413, "file_too_large", f"image {name} is larger than the limit")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ApiError(422, "invalid_image", f"image {name} is not valid base64") from error
        if not data:
            raise ApiError(422, "invalid_image", f"image {name} is empty")
        named.append((name, data))
    for field, value, low, high in (
        ("eps", parsed.eps, 0.0, settings.max_eps),
        ("top_k", parsed.top_k, 1, 50),
    ):
        if not low <= value <= high:
            raise ApiError(422, "invalid_setting", f"{field} must lie in [{low}, {high}]")
    return Asked(named, parsed.robustness, parsed.eps, parsed.top_k)


def _check_count(count: int, settings: Settings) -> None:
    if count > settings.max_predict_files:
        raise ApiError(
            413,
            "too_many_files",
            f"{count} images; the limit is {settings.max_predict_files} per request",
        )


def _parse_form(form: FormData, settings: Settings) -> Asked:
    files = files_of(form, "images")
    if not files:
        raise ApiError(422, "no_images", "send images as repeated 'images' file fields")
    _check_count(len(files), settings)
    robustness = (optional_text(form, "robustness") or "false").lower()
    if robustness not in ("true", "false", "1", "0"):
        raise ApiError(422, "invalid_setting", "robustness must be true or false")
    eps = form_number(form, "eps", float, 0.0, settings.max_eps, 0.1)
    top_k = form_number(form, "top_k", int, 1, 50, 3)
    return Asked(read_bytes(files, settings), robustness in ("true", "1"), eps, top_k)


@dataclass(frozen=True)
class Asked:
    """A prediction request, checked: its images (name for messages, bytes) and settings."""

    named: list[tuple[str, bytes]]
    robust: bool
    eps: float
    top_k: int


@dataclass(frozen=True)
class Prepared:
    """What the batched forward pass needs of a request, and how to answer it."""

    asked: Asked
    model_id: str
    served: ServedModel
    images: torch.Tensor  # uint8 [n, C, S, S]
    base: BaseModel | None  # its out-of-domain check applies; None: no check


def _prepare(
    parse: Callable[[], Asked], services: Services, model_id: str, caller: Caller
) -> Prepared:
    """Check the request, charge a robustness check, load the model, decode the images: one
    trip to a blocking thread."""
    asked = parse()
    if asked.robust:  # an attack per image: charged by its cost (1 unit is paid)
        charge(services, caller, "predictions", ROBUSTNESS_COST - 1)
    served = services.cache.load(model_id, lambda: services.store.models.weights(model_id))
    if served is None:
        raise ApiError(404, "model_not_found", f"the weights of model {model_id} have expired")
    spec = InputSpec(**served.info["spec"])
    images = torch.from_numpy(decode_named(asked.named, spec, services.settings))
    base = _base_of(services, caller.tenant, served.info)
    checked = base if base is not None and base.spec == spec and base.domain else None
    return Prepared(asked, model_id, served, images, checked)


async def _answers(prepared: Prepared, services: Services) -> list[dict[str, Any]]:
    """Run the request in a batch with concurrent ones of the same model; its answers."""
    asked, base = prepared.asked, prepared.base
    key = (prepared.model_id, base.identity if base is not None else None)
    if asked.robust:
        compute = partial(_attack_rows, prepared.served, base, asked.eps)
        rows = await services.attack_batches.run((*key, asked.eps), prepared.images, compute)
    else:
        compute = partial(_plain_rows, prepared.served.forward, base)
        rows = await services.plain_batches.run(key, prepared.images, compute)
    answers = predict_answers(
        torch.stack([row[0] for row in rows]),
        prepared.served.info["classes"],
        top_k=asked.top_k,
        survives=[row[2] for row in rows] if asked.robust else None,
        attack=PREDICT_ATTACK,
        eps=asked.eps if asked.robust else None,
    )
    for answer, row in zip(answers, rows, strict=True):
        verdict = row[1]
        answer["in_domain"] = None if verdict is None else verdict.in_domain
        if verdict is not None and not verdict.in_domain:
            answer["domain_warning"] = verdict.reason
    return answers


def _plain_rows(
    forward: Callable[[torch.Tensor], torch.Tensor], base: BaseModel | None, images: torch.Tensor
) -> list[tuple]:
    """(probabilities, domain verdict) per image of a batch: on the inference thread."""
    scores = probabilities(forward, images)
    verdicts = base.check_domain(images) if base is not None else None
    return list(zip(scores, verdicts or [None] * len(images), strict=True))


def _attack_rows(
    served: ServedModel, base: BaseModel | None, eps: float, images: torch.Tensor
) -> list[tuple]:
    """(probabilities, domain verdict, label survives) per image of a batch."""
    rows = _plain_rows(served.model, base, images)  # the attacked model's own labels
    scores = torch.stack([row[0] for row in rows])
    survives = label_survives(
        served.model, images, scores.argmax(1), eps=eps, attack=PREDICT_ATTACK
    )
    return [(*row, alive) for row, alive in zip(rows, survives, strict=True)]


def _base_of(services: Services, tenant: str, info: dict[str, Any]) -> BaseModel | None:
    """The base model a model was adapted from, if it is still the same one (a tenant may
    delete a base model and make another of the same name); None when it is gone."""
    try:
        base = services.base_model(tenant, info["base_model"])
    except (UnknownBaseModel, BaseModelUnavailable):
        return None
    except CheckpointError as error:
        logger.error("base model %s of tenant %s unreadable: %s", info["base_model"], tenant, error)
        return None
    same = info.get("base_identity", base.identity) == base.identity
    return base if same else None
