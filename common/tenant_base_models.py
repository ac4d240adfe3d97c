"""Base models a tenant meta-trained on its own classes: records, weights, lookup.

A record (``keys.base_models(tenant)``, name -> JSON) is written with the meta-training job
that makes it, in the same transaction; the job's success writes the weights and marks the
record ready, in the transaction that finishes the job. A record still ``training`` whose job
failed, was cancelled or expired is shown with that job's state. Shipped base models and a
tenant's own share one namespace: a tenant cannot take a shipped name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.keys import Keys
from common.lru import LruCache

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")


class BaseModelNameTaken(Exception):
    pass


class BaseModelUnavailable(LookupError):
    """No shipped base model and no ready one of the tenant's has that name."""


@dataclass(frozen=True)
class TenantBaseModels:
    client: redis.Redis
    keys: Keys

    def records(self, tenant: str) -> list[dict[str, Any]]:
        raw = self.client.hgetall(self.keys.base_models(tenant))
        return sorted((json.loads(v) for v in raw.values()), key=lambda r: r["name"])

    def record(self, tenant: str, name: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.base_models(tenant), name)
        return None if raw is None else json.loads(raw)

    def check_free(self, pipe: redis.client.Pipeline, tenant: str, name: str, cap: int) -> None:
        """Raise BaseModelNameTaken or ValueError (cap) while ``pipe`` WATCHes the records."""
        key = self.keys.base_models(tenant)
        if pipe.hexists(key, name):
            raise BaseModelNameTaken(f"you already have a base model named {name!r}")
        if pipe.hlen(key) >= cap:
            raise ValueError(f"you have {cap} base models, the limit: delete one first")

    def create_writes(self, pipe: redis.client.Pipeline, tenant: str, record: dict) -> None:
        pipe.hset(self.keys.base_models(tenant), record["name"], json.dumps(record))

    def update(self, tenant: str, name: str, job_id: str, changes: dict[str, Any]) -> bool:
        """Merge ``changes`` into the record that ``job_id`` trains for; False (nothing written)
        when the tenant deleted it (checked under WATCH: a deleted record is never revived)."""
        key = self.keys.base_models(tenant)
        written = [False]

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hget(key, name)
            current = None if raw is None else json.loads(raw)
            if current is None or current.get("job_id") != job_id:
                return
            pipe.multi()
            pipe.hset(key, name, json.dumps({**current, **changes}))
            written[0] = True

        self.client.transaction(apply, key)
        return written[0]

    def ready_writes(
        self, pipe: redis.client.Pipeline, tenant: str, record: dict, blob: bytes
    ) -> None:
        pipe.set(self.keys.base_model(tenant, record["name"]), blob)
        pipe.hset(self.keys.base_models(tenant), record["name"], json.dumps(record))

    def weights(self, tenant: str, name: str) -> bytes | None:
        return self.client.get(self.keys.base_model(tenant, name))

    def delete(self, tenant: str, name: str) -> dict[str, Any] | None:
        record = self.record(tenant, name)
        if record is None:
            return None
        pipe = self.client.pipeline()
        pipe.hdel(self.keys.base_models(tenant), name)
        pipe.delete(self.keys.base_model(tenant, name))
        pipe.execute()
        return record


@dataclass(frozen=True)
class BaseModelResolver:
    """Base models by name for a tenant: a shipped one (``shipped``: models.service.base_models
    BaseModels), else the tenant's own ready one, ``decode(name, stored bytes)``-d once and kept
    in ``cache`` (keyed by its training job: a re-created name is another model)."""

    shipped: Any
    store: TenantBaseModels
    decode: Callable[[str, bytes], Any]
    cache: LruCache

    def get(self, tenant: str, name: str | None) -> Any:
        if name is None or name in self.shipped.by_name:
            return self.shipped.get(name)
        record = self.store.record(tenant, name)
        if record is None or record.get("state") != "ready":
            known = sorted(self.shipped.by_name) + [r["name"] for r in self.store.records(tenant)]
            state = "" if record is None else f" (it is {record.get('state')})"
            raise BaseModelUnavailable(
                f"no ready base model {name!r}{state}; known: {', '.join(known)}"
            )
        key = f"{tenant}/{name}/{record['job_id']}"
        loaded = self.cache.get(key)
        if loaded is None:
            blob = self.store.weights(tenant, name)
            if blob is None:
                raise BaseModelUnavailable(
                    f"the weights of base model {name!r} are gone; train it again"
                )
            loaded = self.decode(name, blob)
            self.cache.put(key, loaded)
        return loaded
