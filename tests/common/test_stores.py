"""One builder of the stores: the API and the worker hold the same stores, sized by the same
settings, and agree on which workers are live."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis

from tests.service_fixtures import service_stores

pytestmark = pytest.mark.redis


def test_stores_share_one_client_and_prefix(settings):
    client = redis.Redis.from_url(settings.redis_url)
    stores = service_stores(settings, client)
    parts = (stores.jobs, stores.queue, stores.models, stores.tenant_bases, stores.api_keys)
    assert all(part.client is client and part.keys == stores.keys for part in parts)
    assert stores.keys.prefix == settings.key_prefix
    assert stores.jobs.job_ttl_s == settings.job_ttl_s
    assert stores.models.model_ttl_s == settings.model_ttl_s
    sized = settings.model_copy(update={"base_model_cache_size": 3})
    resolver = service_stores(sized, client).base_model_resolver(SimpleNamespace(), bytes)
    assert resolver.cache.capacity == 3


def test_a_worker_is_live_within_its_heartbeats(settings):
    stores = service_stores(settings)
    now = 1_000_000.0
    window = settings.worker_live_s
    assert window == 3 * settings.heartbeat_s
    stores.client.zadd(
        stores.keys.workers,
        {"fresh": now - 1, "edge": now - window, "stale": now - window - 0.01},
    )
    assert stores.live_workers(now=now) == 2
    assert stores.live_workers(now=now + 2 * window) == 0
