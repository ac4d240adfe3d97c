"""Checks on the request body while it streams in: its size, its time, a multipart body's end.

Content-Length is checked first (app.uploads); this middleware also counts the bytes actually
received, so a chunked upload without Content-Length, or one that lies about it, is cut off at
the limit instead of being buffered whole. A multipart body must end with its closing boundary:
a truncated upload (a dropped connection, a client bug) is refused whole, never half-stored.
"""

from __future__ import annotations

import asyncio

from python_multipart.multipart import parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError

TAIL_BYTES = 4096  # how much of the body's end is kept to find the closing boundary in


def closing_boundary(scope: Scope) -> bytes | None:
    """``--boundary--`` of a multipart request, None for any other body."""
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            content_type, options = parse_options_header(value)
            boundary = options.get(b"boundary")
            if content_type == b"multipart/form-data" and boundary:
                return b"--" + boundary + b"--"
    return None


def truncated_multipart() -> ApiError:
    return ApiError(
        400,
        "invalid_multipart",
        "the multipart body ends before its closing boundary (truncated upload); nothing was "
        "stored: send the whole request again",
    )


class BodyLimitMiddleware:
    """Cut a request off at ``max_request_bytes`` of the app's settings (read per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] != "http" or services is None:
            await self.app(scope, receive, send)
            return
        max_bytes = services.settings.max_request_bytes
        closing = closing_boundary(scope)
        received, tail = 0, b""
        loop, body_timeout_s = asyncio.get_running_loop(), services.settings.body_timeout_s
        deadline = loop.time() + body_timeout_s  # for the whole body: trickling does not help

        async def counted() -> Message:
            nonlocal received, tail
            try:
                message = await asyncio.wait_for(receive(), deadline - loop.time())
            except TimeoutError as error:
                raise ApiError(
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {body_timeout_s:g} s; "
                    "nothing was stored",
                ) from error
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise ApiError(
                        413,
                        "request_too_large",
                        f"the request body exceeds the limit of {max_bytes} bytes",
                    )
                if closing is not None:
                    tail = (tail + message.get("body", b""))[-TAIL_BYTES:]
                    if not message.get("more_body", False) and closing not in tail:
                        raise truncated_multipart()
            return message

        await self.app(scope, counted, send)
