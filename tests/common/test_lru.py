"""The least-recently-used cache: bounded by count, or by what its values weigh (bytes)."""

from __future__ import annotations

from common.lru import LruCache


def test_a_count_bound_cache_keeps_the_most_recently_used():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_a_byte_bound_cache_evicts_until_the_bytes_fit_and_counts_replacements_once():
    cache = LruCache(100, weight=len)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    cache.put("a", b"x" * 30)  # replaced: 70 bytes held, not 110
    assert cache.total_weight == 70 and len(cache) == 2
    cache.put("c", b"x" * 50)  # 120: b, the least recently used, goes
    assert cache.get("b") is None and cache.total_weight == 80
    cache.put("big", b"x" * 500)  # larger than the bound alone: kept, the rest evicted
    assert len(cache) == 1 and cache.get("big") is not None
    cache.drop("big")
    assert cache.total_weight == 0 and len(cache) == 0


def test_peek_does_not_mark_a_value_used():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1 and cache.peek("missing") is None
    cache.put("c", 3)  # "a" is still the least recently used
    assert cache.get("a") is None and cache.get("b") == 2
