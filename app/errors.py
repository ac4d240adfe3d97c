"""Domain errors -> JSON HTTP errors: ``{"error": {"code", "message"}}`` with a stable code."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.artifacts import ArtifactCorrupt, ArtifactMissing, ArtifactsUnavailable
from common.job_errors import JobConflict, JobNotFound, TooManyJobs
from common.tenant_base_models import BaseModelUnavailable
from models.core import CheckpointError
from models.data import AmbiguousLabels, ArchiveError, DataError, InvalidLabel, UnsupportedFormat
from models.service import ArtifactError, UnknownBaseModel

logger = logging.getLogger(__name__)
ErrorHandler = Callable[[Request, Any], Awaitable[JSONResponse]]


class ApiError(Exception):
    """An error the API answers with ``status`` and a stable machine-readable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.details = details


class ErrorDetail(BaseModel):
    code: str  # stable, machine-readable, e.g. "model_not_found"
    message: str  # for people: what went wrong and what to do
    details: list[dict[str, Any]] | None = None  # per item, e.g. each refused image (optional)


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_MEANINGS = {
    400: "unreadable request",
    401: "missing, wrong or revoked API key",
    404: "unknown id (or another tenant's)",
    409: "the resource is not in a state that allows this",
    410: "the model was evicted (the tenant's model cap); the message says when and why",
    413: "a size limit was exceeded",
    408: "the request body came too slowly; nothing was stored",
    415: "unsupported media type or image format",
    422: "invalid input; nothing was stored",
    429: "rate limit of the API key, or the tenant's job limit, reached; see Retry-After",
    503: "Redis or the artifact store unavailable, or the service is not ready; retry later",
    507: "the job store (Redis) is full; nothing was stored",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for routes that can answer these errors."""
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses
    }


API_ERRORS = error_responses(400, 401, 404, 408, 409, 410, 413, 415, 422, 429, 503, 507)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    **headers: str,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers or None)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "too_many_requests",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Every error a route lets out answered as JSON (:func:`error_response`): a domain error
    with its stable code, anything HTTP-level with one of :data:`HTTP_CODES`."""
    handlers: dict[type[Exception], ErrorHandler] = {
        ApiError: _api_error,
        UnsupportedFormat: _answer(415, "unsupported_image_format"),
        ArchiveError: _answer(422, "invalid_archive"),
        InvalidLabel: _answer(422, "invalid_label"),
        AmbiguousLabels: _answer(422, "ambiguous_labels"),
        DataError: _answer(422, "invalid_image"),
        JobNotFound: _job_not_found,
        TooManyJobs: _answer(429, "too_many_jobs", {"Retry-After": "30"}),
        JobConflict: _answer(409, "job_conflict"),
        UnknownBaseModel: _answer(422, "unknown_base_model"),
        BaseModelUnavailable: _answer(422, "unknown_base_model"),
        CheckpointError: _answer(500, "corrupt_artifact", logged="unreadable base model"),
        ArtifactError: _answer(500, "corrupt_artifact", logged="corrupt stored artifact"),
        ArtifactsUnavailable: _answer(503, "artifacts_unavailable", {"Retry-After": "10"}),
        ArtifactMissing: _answer(500, "artifact_missing", logged="blob missing from the store"),
        ArtifactCorrupt: _answer(500, "artifact_corrupt", logged="blob differs from its record"),
        redis.RedisError: _redis_error,
        RequestValidationError: _invalid_request,
        StarletteHTTPException: _http_error,
    }
    for error_type, handler in handlers.items():
        app.add_exception_handler(error_type, handler)


def _answer(
    status: int, code: str, headers: dict[str, str] | None = None, logged: str | None = None
) -> ErrorHandler:
    """A handler answering ``status`` and ``code`` with the error's text (and, given
    ``logged``, logging it as an error under that heading)."""

    async def handle(_: Request, error: Exception) -> JSONResponse:
        if logged is not None:
            logger.error("%s: %s", logged, error)
        return error_response(status, code, str(error), **(headers or {}))

    return handle


async def _api_error(_: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status, error.code, error.message, error.details, **error.headers)


async def _job_not_found(_: Request, error: JobNotFound) -> JSONResponse:
    return error_response(404, "job_not_found", f"no job with id {error}")


async def _redis_error(_: Request, error: redis.RedisError) -> JSONResponse:
    logger.error("redis error: %s", error)
    if isinstance(error, redis.exceptions.OutOfMemoryError) or "maxmemory" in str(error):
        return error_response(
            507,
            "storage_full",
            "the job store is full (Redis maxmemory); delete models or retry later",
            **{"Retry-After": "60"},
        )
    return error_response(
        503,
        "storage_unavailable",
        "the job store (Redis) is unavailable; retry shortly",
        **{"Retry-After": "5"},
    )


async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in error.errors()
    )
    return error_response(422, "invalid_request", problems or "invalid request")


async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(error.status_code, "http_error")
    return error_response(error.status_code, code, str(error.detail))
