"""Per-key request rate limits: a fixed one-minute window counted in Redis.

Fixed windows are simple and shared by every API replica; a client can reach twice the limit
across a window boundary, which the documentation states.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis

from common.keys import Keys

logger = logging.getLogger(__name__)
WINDOW_S = 60
clock: Callable[[], float] = time.time  # the windows' clock; tests pin it (never the wall)


def hit(
    client: redis.Redis,
    keys: Keys,
    key_id: str,
    action: str,
    per_minute: int,
    now: float | None = None,
    cost: int = 1,
) -> int | None:
    """Count ``cost`` units (one plain request: 1); None when within the limit, else whole
    seconds until it resets.

    ``per_minute`` 0 means no limit (nothing is counted). When Redis is full (maxmemory) it
    refuses the count: the request is let through uncounted, so reads keep working.
    """
    if per_minute == 0:
        return None
    moment = clock() if now is None else now
    window = int(moment // WINDOW_S)
    key = keys.rate(key_id, action, window)
    pipe = client.pipeline(transaction=True)
    pipe.incrby(key, cost)
    pipe.expire(key, 2 * WINDOW_S)
    try:
        count, _ = pipe.execute()
    except redis.exceptions.OutOfMemoryError:
        logger.warning("redis is full: a %s request of key %s is not counted", action, key_id)
        return None
    if count <= per_minute:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_S - moment))
