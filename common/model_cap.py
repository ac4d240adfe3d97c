"""The per-tenant cap on stored models: the oldest finished models make room for new ones.

An evicted model keeps a small record (state ``evicted``, when and why) for
``EVICTED_RECORD_TTL_S``, so asking for it says what happened instead of a bare 404; its weights
and report are deleted. Pending models are never evicted: a tenant whose cap is all pending
models must wait.
"""

from __future__ import annotations

import redis

from common.jobs import now
from common.keys import Keys, ModelState

EVICTED_RECORD_TTL_S = 7 * 86400


class ModelCapReached(Exception):
    """Every stored model of the tenant is still pending: nothing can be evicted."""


def plan_eviction(client: redis.Redis, keys: Keys, tenant: str, cap: int) -> list[str]:
    """Ids of the oldest finished models to evict so that one more model fits under ``cap``."""
    index = keys.models_index(tenant)
    excess = client.zcard(index) - cap + 1
    if excess <= 0:
        return []
    victims = []
    for raw_id in client.zrange(index, 0, -1):
        model_id = raw_id.decode()
        state = client.hget(keys.model(model_id), "state")
        if state is None:  # expired already: only the index entry is left
            client.zrem(index, model_id)
            excess -= 1
        elif state.decode() != ModelState.PENDING:
            victims.append(model_id)
        if len(victims) >= excess:
            return victims
    if excess > len(victims):
        raise ModelCapReached(
            f"tenant {tenant!r} has {cap} models and all are still being adapted; "
            "wait for one to finish or delete one"
        )
    return victims


def evict(pipe: redis.client.Pipeline, keys: Keys, tenant: str, model_ids: list[str], cap: int):
    """Queue the eviction of ``model_ids`` on ``pipe`` (part of the caller's transaction)."""
    for model_id in model_ids:
        pipe.delete(keys.model_weights(model_id), keys.model_report(model_id))
        pipe.hset(
            keys.model(model_id),
            mapping={
                "state": ModelState.EVICTED.value,
                "evicted": now(),
                "evicted_reason": f"evicted to keep the tenant under its cap of {cap} models "
                "(oldest finished first)",
            },
        )
        pipe.expire(keys.model(model_id), EVICTED_RECORD_TTL_S)
        pipe.zrem(keys.models_index(tenant), model_id)
