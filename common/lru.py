"""A small thread-safe least-recently-used cache."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LruCache:
    """Values by key, the least recently used evicted past ``capacity``; thread-safe."""

    capacity: int
    _items: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class TtlCache(LruCache):
    """An :class:`LruCache` whose values are forgotten ``ttl_s`` after they were put: what
    another process changes (a revoked key, a deleted model) is seen within ``ttl_s``."""

    ttl_s: float = 1.0
    _clock: Any = time.monotonic

    def get(self, key: str) -> Any | None:
        entry = super().get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._clock() >= expires:
            self.drop(key)
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        if self.ttl_s > 0:
            super().put(key, (value, self._clock() + self.ttl_s))
