"""``Idempotency-Key`` on ``POST /v1/adaptations``: a client that retries after a timeout or a
dropped connection gets the first answer again instead of a second job.

The key is scoped to the tenant, the method and the path. The first request with a key marks it
in progress (``IN_PROGRESS_TTL_S``, so a crashed API process frees it), runs, and stores its
answer for ``ANSWER_TTL_S`` in the very transaction that makes the job. A repeat with the same
request gets that answer (header ``Idempotent-Replayed: true``); a repeat while the first runs
gets 409 ``idempotency_in_progress``; the same key on a different request (other fields or
files) gets 422 ``idempotency_key_reused``. A request that fails before its job is made frees
its key, so the fixed request can reuse it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from redis.client import Pipeline
from starlette.datastructures import FormData, UploadFile

from app.errors import ApiError
from app.services import Services

HEADER = "Idempotency-Key"
IN_PROGRESS_TTL_S = 300  # longer than any upload's handling; then a crashed request's key frees
ANSWER_TTL_S = 24 * 3600  # how long a key replays its answer
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


def form_fingerprint(form: FormData) -> str:
    """SHA-256 over the fields in order: names, text values, files' names and contents (not
    the multipart boundary, which differs between two sends of the same request)."""
    digest = hashlib.sha256()
    for name, value in form.multi_items():
        digest.update(name.encode() + b"\0")
        if isinstance(value, UploadFile):
            value.file.seek(0)
            for chunk in iter(functools.partial(value.file.read, 1 << 20), b""):
                digest.update(chunk)
            value.file.seek(0)
            digest.update(b"\0file\0" + (value.filename or "").encode())
        else:
            digest.update(b"\0text\0" + str(value).encode())
        digest.update(b"\0\0")
    return digest.hexdigest()


def idempotency_key(request: Request) -> str | None:
    """The request's key, checked; None when it sent none."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.match(key):
        raise ApiError(
            422, "invalid_idempotency_key", f"{HEADER} must be 1-255 printable ASCII characters"
        )
    return key


@dataclass(frozen=True)
class Claim:
    """A key this request holds: its answer is written in the transaction that makes the job,
    so a job never exists without the answer that replays it."""

    redis_key: str
    fingerprint: str

    def answer_writes(self, status: int, body: dict[str, Any]) -> Callable[[Pipeline], None]:
        record = {"state": "done", "fingerprint": self.fingerprint, "status": status, "body": body}

        def write(pipe: Pipeline) -> None:
            pipe.set(self.redis_key, json.dumps(record), ex=ANSWER_TTL_S)

        return write


def run_once(
    services: Services,
    tenant: str,
    request: Request,
    key: str | None,
    form: FormData,
    create: Callable[[Claim | None], JSONResponse],
) -> JSONResponse:
    """``create(claim)``, or the answer given before to the same request under the same key.
    ``create`` must write ``claim.answer_writes(...)`` in the transaction that makes its job."""
    if key is None:
        return create(None)
    scope = f"{request.method} {request.url.path} {key}"
    redis_key = services.keys.idempotency(tenant, hashlib.sha256(scope.encode()).hexdigest())
    claim = Claim(redis_key, form_fingerprint(form))
    marker = json.dumps({"state": "in_progress", "fingerprint": claim.fingerprint})
    if not services.client.set(redis_key, marker, nx=True, ex=IN_PROGRESS_TTL_S):
        return _replay(services.client.get(redis_key), claim.fingerprint)
    try:
        return create(claim)
    except BaseException:
        stored = services.client.get(redis_key)
        if stored is None or json.loads(stored)["state"] != "done":
            services.client.delete(redis_key)  # no job was made: the key is free again
        raise


def _replay(stored: bytes | None, fingerprint: str) -> JSONResponse:
    if stored is None:  # expired between the two reads: ask the client to send it again
        raise ApiError(
            409, "idempotency_in_progress", "the request with this key just ended; retry"
        )
    record = json.loads(stored)
    if record["fingerprint"] != fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"this {HEADER} was used for a different request; use a new key for a new request",
        )
    if record["state"] != "done":
        raise ApiError(
            409,
            "idempotency_in_progress",
            f"a request with this {HEADER} is still being handled; retry in a moment",
        )
    headers = {"Idempotent-Replayed": "true"}
    if "status_url" in record["body"]:
        headers["Location"] = record["body"]["status_url"]
    return JSONResponse(record["body"], status_code=record["status"], headers=headers)
