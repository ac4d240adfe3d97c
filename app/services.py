"""What the API process holds for its lifetime: settings, Redis, stores, base models, cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import redis
import torch

from common.jobs import JobStore
from common.keys import Keys
from common.queue import JobQueue
from common.settings import Settings
from models.artifacts import load_adapted
from models.base_models import BaseModels
from models.networks import FewShotNet


@dataclass
class ModelCache:
    """Adapted models deserialized once and kept in memory, least recently used evicted."""

    capacity: int
    hits: int = 0
    misses: int = 0
    _items: OrderedDict[str, tuple[FewShotNet, dict]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, model_id: str, load_bytes) -> tuple[FewShotNet, dict] | None:
        with self._lock:
            if model_id in self._items:
                self._items.move_to_end(model_id)
                self.hits += 1
                return self._items[model_id]
        data = load_bytes()
        if data is None:
            return None
        loaded = load_adapted(data, torch.device("cpu"))
        with self._lock:
            self.misses += 1
            self._items[model_id] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return loaded

    def __len__(self) -> int:
        return len(self._items)

    def drop(self, model_id: str) -> None:
        with self._lock:
            self._items.pop(model_id, None)


@dataclass
class BytesCache:
    """Least recently used bytes by key (e.g. report charts), thread-safe."""

    capacity: int
    _items: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


@dataclass
class Services:
    settings: Settings
    client: redis.Redis
    base_models: BaseModels
    keys: Keys = field(init=False)
    store: JobStore = field(init=False)
    queue: JobQueue = field(init=False)
    cache: ModelCache = field(init=False)
    report_pngs: BytesCache = field(init=False)
    blocking: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.store = JobStore(
            self.client, self.keys, self.settings.job_ttl_s, self.settings.model_ttl_s
        )
        self.queue = JobQueue(self.client, self.keys, self.settings.claim_idle_ms)
        self.cache = ModelCache(self.settings.model_cache_size)
        self.report_pngs = BytesCache(self.settings.model_cache_size)
        # made inside the app's event loop (lifespan): the threads of blocking work
        self.blocking = anyio.CapacityLimiter(self.settings.blocking_threads)

    async def off_loop(self, work: Callable[..., Any], /, *args: Any) -> Any:
        """``work(*args)`` on a thread of the bounded blocking pool: decoding, forward passes
        and Redis round trips of an upload never stall the event loop (and /healthz)."""
        return await anyio.to_thread.run_sync(work, *args, limiter=self.blocking)
