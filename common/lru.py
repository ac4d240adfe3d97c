"""A small thread-safe least-recently-used cache."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def one(_: Any) -> int:
    return 1


@dataclass
class LruCache:
    """Values by key, the least recently used evicted once their weights add up past
    ``capacity`` (each value weighs 1 unless ``weight`` says otherwise, e.g. its bytes; the
    value just put always stays); thread-safe."""

    capacity: int
    weight: Callable[[Any], int] = one
    _items: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _total: int = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def peek(self, key: str) -> Any | None:
        """The value, not marked as used."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if key in self._items:
                self._total -= self.weight(self._items.pop(key))
            self._items[key] = value
            self._total += self.weight(value)
            while self._total > self.capacity and len(self._items) > 1:
                self._total -= self.weight(self._items.popitem(last=False)[1])

    def drop(self, key: str) -> None:
        with self._lock:
            if key in self._items:
                self._total -= self.weight(self._items.pop(key))

    @property
    def total_weight(self) -> int:
        return self._total

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
