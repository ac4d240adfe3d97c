"""The request-size limit, enforced while the body streams in.

Content-Length is checked first (app.uploads); this middleware also counts the bytes actually
received, so a chunked upload without Content-Length, or one that lies about it, is cut off at
the limit instead of being buffered whole.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError


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
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise ApiError(
                        413,
                        "request_too_large",
                        f"the request body exceeds the limit of {max_bytes} bytes",
                    )
            return message

        await self.app(scope, counted, send)
