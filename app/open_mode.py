"""The guard of open mode (no API keys, ``make run``): only the local machine may drive it.

Without keys, any web page a local user opens could otherwise drive the API: through DNS
rebinding (a hostile name resolving to 127.0.0.1: the browser sends that name as Host) or a
cross-site form POST (CSRF). So in open mode the API answers only requests addressed to a
loopback name (``FEWSHOT_OPEN_HOSTS``), and refuses writes that a browser says come from
another site (``Origin`` or ``Sec-Fetch-Site``). Keys mode is not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(authority: str) -> str:
    """The name of a Host header or URL authority, without port or IPv6 brackets."""
    return (urlsplit(f"//{authority}").hostname or "").lower()


def refusal(scope: Scope, allowed: frozenset[str]) -> tuple[str, str] | None:
    """(code, message) when an open-mode API must refuse the request, else None."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
    host = headers.get("host", "")
    if host_name(host) not in allowed:
        return (
            "forbidden_host",
            f"this API runs without keys (open mode) and answers only requests to "
            f"{', '.join(sorted(allowed))}, not {host[:100]!r}",
        )
    if scope["method"] in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    cross_site = headers.get("sec-fetch-site") == "cross-site"
    if cross_site or (origin is not None and urlsplit(origin).netloc.lower() != host.lower()):
        return (
            "cross_origin",
            "this API runs without keys (open mode): it refuses writes sent by another site's "
            f"page (Origin {str(origin)[:100]!r})",
        )
    return None


class OpenModeGuard:
    """Refuse, in open mode, what :func:`refusal` names (403, JSON, nothing read or stored)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if scope["type"] == "http" and services is not None and services.settings.auth == "open":
            refused = refusal(scope, services.settings.open_host_names)
            if refused is not None:
                await error_response(403, *refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)
