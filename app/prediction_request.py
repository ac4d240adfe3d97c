"""A prediction request, read and checked: images as multipart files or as base64 in JSON,
and its settings. Every refusal is an :class:`ApiError` raised before anything is computed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request
from pydantic import BaseModel as Schema
from pydantic import ConfigDict, Field, StrictBool, ValidationError
from starlette.datastructures import FormData

from app.errors import ApiError
from app.schemas.forms import PREDICTION_FORM
from app.uploads import files_of, form_flag, form_number, read_bytes
from common.settings import Settings

MAX_JSON_IMAGES = 1000  # a hard bound before the setting's (max_predict_files) is checked


class Base64Image(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=200, description="for messages and your records")
    data: str = Field(description="the image file (PNG, JPEG, ...) in base64")


class PredictionBody(Schema):
    """The JSON form of a prediction request (the same fields as the multipart form)."""

    model_config = ConfigDict(extra="forbid")
    images: list[Base64Image] = Field(min_length=1, max_length=MAX_JSON_IMAGES)
    robustness: StrictBool = False  # true or false, as the form's field (app.uploads.form_flag)
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


async def read_json_body(request: Request, settings: Settings) -> bytes:
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


def parse_json(body: bytes, settings: Settings) -> Asked:
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
        if first["loc"] == ("robustness",):  # the form's rule and answer (form_flag)
            raise ApiError(
                422, "invalid_setting", f"robustness must be true or false, got {first['input']!r}"
            ) from error
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


def parse_form(form: FormData, settings: Settings) -> Asked:
    files = files_of(form, "images")
    if not files:
        raise ApiError(422, "no_images", "send images as repeated 'images' file fields")
    _check_count(len(files), settings)
    robustness = form_flag(form, "robustness")
    eps = form_number(form, "eps", float, 0.0, settings.max_eps, 0.1)
    top_k = form_number(form, "top_k", int, 1, 50, 3)
    return Asked(read_bytes(files, settings), robustness, eps, top_k)


@dataclass(frozen=True)
class Asked:
    """A prediction request, checked: its images (name for messages, bytes) and settings."""

    named: list[tuple[str, bytes]]
    robust: bool
    eps: float
    top_k: int
