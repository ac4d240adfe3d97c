"""Multipart uploads -> validated, decoded images. Nothing is stored here.

Limits (settings): bytes per file, bytes per request (Content-Length), files per request,
pixels per image and per request (checked in the headers before decoding), classes and shots
per class. Only :func:`read_form` awaits the network; the rest blocks and runs off the loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import ApiError
from common.settings import Settings
from models.data import InputSpec, clean_labels, decode_for, image_size
from models.report import plural
from models.service import LabelledImages


async def read_form(request: Request, settings: Settings) -> FormData:
    """The multipart form, refused early when the declared size or file count is too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_request_bytes:
        raise ApiError(
            413,
            "request_too_large",
            f"the request has {declared} bytes; the limit is {settings.max_request_bytes}",
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the images as multipart/form-data (curl -F images=@a.png ...)",
        )
    try:
        return await request.form(max_files=settings.max_files, max_fields=settings.max_files + 50)
    except StarletteHTTPException as error:  # the multipart parser's own limits and errors
        if "Too many files" in str(error.detail):
            raise ApiError(
                413, "too_many_files", f"more than {settings.max_files} files in one request"
            ) from error
        raise ApiError(
            400, "invalid_multipart", f"unreadable multipart body: {error.detail}"
        ) from error


def files_of(form: FormData, field: str) -> list[UploadFile]:
    values = form.getlist(field)
    if any(not isinstance(v, UploadFile) for v in values):
        raise ApiError(422, "not_a_file", f"every {field!r} field must be a file upload")
    return values  # type: ignore[return-value]


def texts_of(form: FormData, field: str, strip: bool = True) -> list[str]:
    """The form's ``field`` values, stripped unless ``strip`` is False (labels: as sent)."""
    values = form.getlist(field)
    if any(not isinstance(v, str) for v in values):
        raise ApiError(422, "invalid_field", f"{field!r} fields must be text, not files")
    return [v.strip() if strip else v for v in values]  # type: ignore[union-attr]


def labels_of(form: FormData, *fields: str) -> list[str]:
    """The labels of ``fields`` together, in the stored spelling (models.data.labels: 422
    ``invalid_label`` or ``ambiguous_labels``), so that two spellings of one label are refused
    even when one is a support and the other a validation label."""
    return clean_labels(label for field in fields for label in texts_of(form, field, strip=False))


def optional_text(form: FormData, field: str) -> str | None:
    texts = texts_of(form, field)
    if len(texts) > 1:
        raise ApiError(422, "invalid_field", f"{field!r} given {len(texts)} times")
    return texts[0] if texts and texts[0] != "" else None


def form_flag(form: FormData, name: str) -> bool:
    """The form's ``name`` field as a boolean: the text true or false (any case), as JSON's
    true and false; absent or empty: false. Nothing else ("1", "yes") is guessed at."""
    text = (optional_text(form, name) or "false").lower()
    if text not in ("true", "false"):
        raise ApiError(422, "invalid_setting", f"{name} must be true or false, got {text!r}")
    return text == "true"


def form_number(form: FormData, name: str, cast: type, low: float, high: float, default: Any):
    """The form's ``name`` field as ``cast`` within [low, high]; ``default`` when absent."""
    text = optional_text(form, name)
    if text is None:
        return default
    try:
        value = cast(text)
    except ValueError as error:
        raise ApiError(422, "invalid_setting", f"{name} must be a number, got {text!r}") from error
    if not low <= value <= high:
        raise ApiError(422, "invalid_setting", f"{name} must lie in [{low}, {high}], got {value}")
    return value


def read_bytes(files: list[UploadFile], settings: Settings) -> list[tuple[str, bytes]]:
    """Each file's name for messages (counted from 1) and bytes; 4xx for an empty or too large
    one. Blocking (the parser may have spooled files to disk): call it off the event loop."""
    named = []
    for number, upload in enumerate(files, start=1):
        name = f"#{number} ({upload.filename or 'unnamed'})"
        upload.file.seek(0)
        data = upload.file.read(settings.max_file_bytes + 1)
        if len(data) > settings.max_file_bytes:
            raise ApiError(
                413, "file_too_large", f"file {name} is larger than {settings.max_file_bytes} bytes"
            )
        if not data:
            raise ApiError(422, "invalid_image", f"file {name} is empty")
        named.append((name, data))
    return named


def decode_files(files: list[UploadFile], spec: InputSpec, settings: Settings) -> np.ndarray:
    """uint8 ``[n, C, S, S]``; a clear 4xx naming the first file that is too big or not an
    image. Every header is read first: a request whose images hold more than
    ``max_request_pixels`` together is refused before any pixel is decoded. Blocking."""
    return decode_named(read_bytes(files, settings), spec, settings)


def decode_named(named: list[tuple[str, bytes]], spec: InputSpec, settings: Settings) -> np.ndarray:
    """:func:`decode_files` for images already read: (name for messages, bytes) pairs."""
    limits = {"max_pixels": settings.max_pixels, "formats": settings.image_formats}
    sizes = [image_size(data, source=name, **limits) for name, data in named]
    pixels = sum(width * height for width, height in sizes)
    if pixels > settings.max_request_pixels:
        raise ApiError(
            413,
            "too_many_pixels",
            f"the {len(named)} images hold {pixels} pixels together; the limit per request is "
            f"{settings.max_request_pixels}: send smaller images or fewer per request",
        )
    return np.stack([decode_for(spec, data, source=name, **limits) for name, data in named])


def check_labels(labels: list[str], count: int, field: str) -> None:
    """One label per file of ``field``; what a label may be is :func:`labels_of`'s."""
    if len(labels) != count:
        raise ApiError(
            422,
            "labels_mismatch",
            f"{plural(count, 'file')} in {field!r} but {plural(len(labels), 'label')}: "
            "send one label per image, in the same order",
        )


def _classes(names: list[str]) -> str:
    """'class 'a' has' or 'classes ['a', 'b'] have' (at most 5 named)."""
    return f"class {names[0]!r} has" if len(names) == 1 else f"classes {names[:5]} have"


def _labels(names: list[str]) -> str:
    return f"label {names[0]!r} is" if len(names) == 1 else f"labels {names[:5]} are"


@dataclass(frozen=True)
class SupportUpload:
    support: LabelledImages
    validation: LabelledImages | None


def check_support_shape(labels: list[str], settings: Settings) -> list[str]:
    """The sorted class names, after the class and shot bounds are checked."""
    counts = Counter(labels)
    classes = sorted(counts)
    if len(classes) < settings.min_classes:
        raise ApiError(
            422,
            "too_few_classes",
            f"{plural(len(classes), 'class', 'classes')} ({', '.join(map(repr, classes))}); "
            f"a support set needs at least {settings.min_classes}",
        )
    if len(classes) > settings.max_classes:
        raise ApiError(
            422, "too_many_classes", f"{len(classes)} classes; the limit is {settings.max_classes}"
        )
    over = sorted(c for c, n in counts.items() if n > settings.max_shots)
    if over:
        raise ApiError(
            422,
            "too_many_shots",
            f"{_classes(over)} more than {settings.max_shots} images, the limit per class",
        )
    return classes


def read_labelled(
    form: FormData,
    images_field: str,
    labels_field: str,
    spec: InputSpec,
    settings: Settings,
    classes: list[str] | None = None,
) -> LabelledImages | None:
    """Images with labels (in their stored spelling, :func:`labels_of`); ``classes`` given:
    every label must be one of them."""
    files, sent = files_of(form, images_field), texts_of(form, labels_field, strip=False)
    if not files and not sent:
        return None
    check_labels(sent, len(files), images_field)
    labels = labels_of(form, labels_field)
    if classes is None:
        classes = check_support_shape(labels, settings)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ApiError(
            422,
            "unknown_label",
            f"{_labels(unknown)} not among the support set's classes {classes[:10]}",
        )
    images = decode_files(files, spec, settings)
    index = {name: i for i, name in enumerate(classes)}
    return LabelledImages(
        torch.from_numpy(images), torch.tensor([index[label] for label in labels]), classes
    )
