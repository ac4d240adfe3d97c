"""Service-wide job metrics kept in Redis, written in the same transaction as the state change.

Counting in Redis rather than in one process's memory makes the figures cluster-wide: every
API replica reports the same totals whichever worker ran the jobs, and they survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from common.keys import Keys

RECENT_RUNS = 50  # run times kept per kind for time estimates
# upper bounds (s) of the job run-time histogram; a CPU adaptation takes ~15 s, a GPU one ~1 s
SECONDS_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def count_state(pipe: redis.client.Pipeline, keys: Keys, kind: str, state: str) -> None:
    """One more job of ``kind`` entered ``state`` (queued counts creations and re-queues)."""
    pipe.hincrby(keys.job_counts, f"{kind}:{state}", 1)


def observe_seconds(pipe: redis.client.Pipeline, keys: Keys, kind: str, seconds: float) -> None:
    """Add one successful run time to the kind's histogram."""
    bucket = next((str(bound) for bound in SECONDS_BUCKETS if seconds <= bound), "+Inf")
    key = keys.job_seconds(kind)
    pipe.hincrby(key, bucket, 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", seconds)
    pipe.lpush(keys.job_recent_seconds(kind), round(seconds, 3))
    pipe.ltrim(keys.job_recent_seconds(kind), 0, RECENT_RUNS - 1)


def typical_seconds(client: redis.Redis, keys: Keys, kind: str) -> float | None:
    """The median run time of the kind's recent successful jobs; None before 3 of them."""
    recent = sorted(float(v) for v in client.lrange(keys.job_recent_seconds(kind), 0, -1))
    return recent[len(recent) // 2] if len(recent) >= 3 else None


@dataclass(frozen=True)
class Histogram:
    buckets: list[tuple[str, int]]  # (upper bound, cumulative count), ending with "+Inf"
    count: int
    total: float


def job_counts(client: redis.Redis, keys: Keys) -> dict[tuple[str, str], int]:
    """(kind, state) -> how many jobs entered that state."""
    counts = {}
    for field, value in client.hgetall(keys.job_counts).items():
        kind, _, state = field.decode().partition(":")
        counts[(kind, state)] = int(value)
    return counts


def job_seconds(client: redis.Redis, keys: Keys, kind: str) -> Histogram:
    raw = {k.decode(): v.decode() for k, v in client.hgetall(keys.job_seconds(kind)).items()}
    cumulative = 0
    buckets = []
    for bound in [*map(str, SECONDS_BUCKETS), "+Inf"]:
        cumulative += int(raw.get(bound, 0))
        buckets.append((bound, cumulative))
    return Histogram(buckets, int(raw.get("count", 0)), float(raw.get("sum", 0.0)))
