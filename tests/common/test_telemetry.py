"""Job counters and run-time histograms in Redis."""

from __future__ import annotations

import pytest
import redis

from common import telemetry
from common.keys import Keys

pytestmark = pytest.mark.redis


def test_histogram_buckets_are_cumulative(redis_url, prefix):
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    pipe = client.pipeline(transaction=True)
    for seconds in (0.3, 7.0, 7.5, 5000.0):
        telemetry.observe_seconds(pipe, keys, "adapt", seconds)
    telemetry.count_state(pipe, keys, "adapt", "queued")
    telemetry.count_state(pipe, keys, "adapt", "queued")
    pipe.execute()
    histogram = telemetry.job_seconds(client, keys, "adapt")
    buckets = dict(histogram.buckets)
    assert buckets["0.5"] == 1 and buckets["5.0"] == 1 and buckets["10.0"] == 3
    assert buckets["1800.0"] == 3 and buckets["+Inf"] == 4 == histogram.count
    assert histogram.total == pytest.approx(5014.8)
    assert telemetry.job_counts(client, keys) == {("adapt", "queued"): 2}
    empty = telemetry.job_seconds(client, keys, "evaluate")
    assert empty.count == 0 and empty.buckets[-1] == ("+Inf", 0)
