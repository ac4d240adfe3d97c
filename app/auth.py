"""Who is calling: bearer API keys (one tenant each) or the open local mode; rate limits.

Every /v1 route takes a :data:`CallerDep` (or a rate-limited variant); what it reads or writes
is scoped to ``caller.tenant``. Another tenant's ids answer 404, exactly like unknown ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.deps import ServicesDep
from app.errors import ApiError
from app.services import Services
from common import rate_limits
from common.api_keys import Caller, digest

OPEN_CALLER = Caller(tenant="local", key_id="open")


async def authenticate(request: Request, services: ServicesDep) -> Caller:
    if services.settings.auth == "open":
        return OPEN_CALLER
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    caller = None
    if scheme.lower() == "bearer" and token:
        caller = await _caller_of(services, token.strip())
    if caller is None:
        raise ApiError(
            401,
            "unauthorized",
            "send a valid API key: 'Authorization: Bearer fsk_...' (fewshot keys create)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


async def _caller_of(services: Services, token: str) -> Caller | None:
    """The key's caller, from Redis or from what this process read of it within
    ``auth_cache_s`` (so a revoked key stops working within that bound); unknown tokens are
    never cached (no one fills the cache with guesses)."""
    known = digest(token) if token.startswith("fsk_") and len(token) <= 200 else None
    caller = services.callers.get(known) if known else None
    if caller is None:
        caller = await services.off_loop(services.stores.api_keys.authenticate, token)
        if caller is not None and known:
            services.callers.put(known, caller)
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]


def charge(services: Services, caller: Caller, action: str, cost: int = 1) -> None:
    """Count ``cost`` units of ``action`` for the caller's key (one unit: one plain request);
    429 past the key's limit per minute. Open mode has no keys, so no limits."""
    if services.settings.auth == "open":
        return
    per_minute = getattr(services.settings, f"rate_{action}_per_min")
    retry_after = rate_limits.hit(
        services.client, services.keys, caller.key_id, action, per_minute, cost=cost
    )
    if retry_after is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"this key has used its {per_minute} rate-limit units per minute for {action} (a "
            f"plain request is 1 unit; see GET /v1/limits); retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def _limited(action: str):
    async def check(caller: CallerDep, services: ServicesDep) -> Caller:
        settings = services.settings
        if settings.auth != "open" and getattr(settings, f"rate_{action}_per_min"):
            await services.off_loop(charge, services, caller, action)  # a Redis round trip
        return caller

    return check


UploadCallerDep = Annotated[Caller, Depends(_limited("uploads"))]
PredictCallerDep = Annotated[Caller, Depends(_limited("predictions"))]
