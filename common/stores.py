"""The stores over the service's Redis, built in one place for the API, the worker and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.api_keys import ApiKeys
from common.artifacts import open_store
from common.jobs import JobStore
from common.keys import Keys
from common.lru import LruCache
from common.model_store import ModelStore, UnfinishedReport
from common.queue import JobQueue
from common.settings import Settings
from common.tenant_base_models import BaseModelResolver, TenantBaseModels


def _cannot_end_jobs(*_: Any) -> Any:
    raise RuntimeError("these stores were built without unfinished_report: they cannot end jobs")


@dataclass(frozen=True)
class Stores:
    """Every record store of one Redis under one key prefix, sized by one ``settings``."""

    settings: Settings
    client: redis.Redis
    keys: Keys
    jobs: JobStore
    queue: JobQueue
    models: ModelStore
    tenant_bases: TenantBaseModels
    api_keys: ApiKeys

    @classmethod
    def build(
        cls,
        settings: Settings,
        client: redis.Redis | None,
        unfinished_report: UnfinishedReport | None = None,
    ) -> Stores:
        """The stores over ``client`` (None: a new client of ``settings.redis_url``);
        ``unfinished_report``: models.report.unfinished_report (common imports no models);
        without it (``fewshot keys``, which needs no torch) the stores cannot end a job."""
        if client is None:
            client = redis.Redis.from_url(settings.redis_url)
        keys = Keys(settings.key_prefix)
        models = ModelStore(
            client, keys, settings.model_ttl_s, open_store(settings.artifacts_location)
        )
        return cls(
            settings=settings,
            client=client,
            keys=keys,
            jobs=JobStore(
                client,
                keys,
                settings.job_ttl_s,
                models,
                unfinished_report or _cannot_end_jobs,
            ),
            queue=JobQueue(client, keys, settings.claim_idle_ms),
            models=models,
            tenant_bases=TenantBaseModels(client, keys, models.artifacts),
            api_keys=ApiKeys(client, keys),
        )

    def base_model_resolver(
        self, shipped: Any, decode: Callable[[str, bytes], Any]
    ) -> BaseModelResolver:
        """Base models by name: ``shipped`` (models.service BaseModels) or a tenant's own,
        decoded by ``decode`` (models.service decode_base_model: common imports no models) and
        kept, ``settings.base_model_cache_size`` of them."""
        cache = LruCache(self.settings.base_model_cache_size)
        return BaseModelResolver(shipped, self.tenant_bases, decode, cache)

    def live_workers(self, now: float | None = None) -> int:
        """Workers whose last heartbeat is at most ``settings.worker_live_s`` old."""
        since = (time.time() if now is None else now) - self.settings.worker_live_s
        return int(self.client.zcount(self.keys.workers, since, "+inf"))


class UsesStores:
    """Short names for what a process uses most of its ``stores`` (the API's Services, the
    worker, a job handler's context): one definition instead of one per class."""

    stores: Stores

    @property
    def keys(self) -> Keys:
        return self.stores.keys

    @property
    def store(self) -> JobStore:
        """The job store (``stores.jobs``)."""
        return self.stores.jobs

    @property
    def queue(self) -> JobQueue:
        return self.stores.queue

    @property
    def models(self) -> ModelStore:
        return self.stores.models

    @property
    def tenant_bases(self) -> TenantBaseModels:
        return self.stores.tenant_bases
