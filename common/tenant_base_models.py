"""Base models a tenant meta-trained on its own classes: the store of their records
(:mod:`common.base_model_record`) and blobs (:mod:`common.base_model_blobs`), and the lookup.

A record (``keys.base_models(tenant)``, name -> JSON) is written with the meta-training job
that makes it, in the same transaction; the job stores the weights in the artifact store
(``base-models/t-<tenant>/<name>/``), then its success names them and marks the record ready, in
the transaction that finishes the job. A record still ``training`` whose job
failed, was cancelled or expired is shown with that job's state. Shipped base models and a
tenant's own share one namespace: a tenant cannot take a shipped name.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.artifacts import ArtifactStore, ArtifactStoreError
from common.base_model_blobs import BaseModelBlobs
from common.base_model_record import BaseModelState, TenantBaseModel
from common.keys import Keys
from common.lru import LruCache

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
logger = logging.getLogger(__name__)


class BaseModelNameTaken(Exception):
    pass


class BaseModelUnavailable(LookupError):
    """No shipped base model and no ready one of the tenant's has that name."""


@dataclass(frozen=True)
class TenantBaseModels(BaseModelBlobs):
    client: redis.Redis
    keys: Keys
    artifacts: ArtifactStore

    def records(self, tenant: str) -> list[TenantBaseModel]:
        raw = self.client.hgetall(self.keys.base_models(tenant))
        return sorted((TenantBaseModel.from_json(v) for v in raw.values()), key=lambda r: r.name)

    def record(self, tenant: str, name: str) -> TenantBaseModel | None:
        raw = self.client.hget(self.keys.base_models(tenant), name)
        return None if raw is None else TenantBaseModel.from_json(raw)

    def check_free(self, pipe: redis.client.Pipeline, tenant: str, name: str, cap: int) -> None:
        """Raise BaseModelNameTaken or ValueError (cap) while ``pipe`` WATCHes the records."""
        key = self.keys.base_models(tenant)
        if pipe.hexists(key, name):
            raise BaseModelNameTaken(f"you already have a base model named {name!r}")
        if pipe.hlen(key) >= cap:
            raise ValueError(f"you have reached the limit of base models ({cap}): delete one first")

    def create_writes(
        self, pipe: redis.client.Pipeline, tenant: str, record: TenantBaseModel
    ) -> None:
        pipe.hset(self.keys.base_models(tenant), record.name, record.to_json())

    def show_validation(
        self, tenant: str, name: str, job_id: str, validation: list[dict[str, Any]]
    ) -> bool:
        """Show the latest ``validation`` on the record that ``job_id`` trains for; False
        (nothing written) when the tenant deleted it (checked under WATCH: a deleted record
        is never revived)."""
        key = self.keys.base_models(tenant)
        written = [False]

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hget(key, name)
            current = None if raw is None else TenantBaseModel.from_json(raw)
            if current is None or current.job_id != job_id:
                return
            pipe.multi()
            updated = dataclasses.replace(current, validation=validation)
            pipe.hset(key, name, updated.to_json())
            written[0] = True

        self.client.transaction(apply, key)
        return written[0]

    def delete(self, tenant: str, name: str) -> TenantBaseModel | None:
        record = self.record(tenant, name)
        if record is None:
            return None
        pipe = self.client.pipeline()
        pipe.hdel(self.keys.base_models(tenant), name)
        pipe.delete(self.keys.base_model(tenant, name))
        pipe.execute()
        if record.weights is not None:
            try:
                self.artifacts.delete([record.weights.name])
            except ArtifactStoreError as error:
                logger.warning(
                    "base model %s/%s: weights left to the sweep: %s", tenant, name, error
                )
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
        if record is None or record.state != BaseModelState.READY:
            known = sorted(self.shipped.by_name) + [r.name for r in self.store.records(tenant)]
            state = "" if record is None else f" (it is {record.state})"
            raise BaseModelUnavailable(
                f"no ready base model {name!r}{state}; known: {', '.join(known)}"
            )
        key = record.cache_key(tenant)
        loaded = self.cache.get(key)
        if loaded is None:
            blob = self.store.weights(tenant, record)
            if blob is None:
                raise BaseModelUnavailable(
                    f"the weights of base model {name!r} are gone; train it again"
                )
            loaded = self.decode(name, blob)
            self.cache.put(key, loaded)
        return loaded

    def forget(self, tenant: str, record: TenantBaseModel) -> None:
        """Drop ``record``'s decoded weights (it was deleted)."""
        self.cache.drop(record.cache_key(tenant))
