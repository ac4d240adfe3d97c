"""API keys and rate-limit windows in a real Redis."""

from __future__ import annotations

import hashlib

import pytest
import redis

from common import rate_limits
from common.api_keys import ApiKey, ApiKeyError, ApiKeys
from common.keys import Keys

pytestmark = pytest.mark.redis


@pytest.fixture
def api_keys(redis_url, prefix) -> ApiKeys:
    return ApiKeys(redis.Redis.from_url(redis_url), Keys(prefix))


def test_only_the_digest_is_stored(api_keys, redis_url, prefix):
    key_id, token = api_keys.create("acme", "ci")
    assert token.startswith(f"fsk_{key_id}_") and len(token) > 50
    stored = redis.Redis.from_url(redis_url)
    everything = b"".join(
        b"".join(k + v for k, v in stored.hgetall(key).items())
        for key in stored.scan_iter(match=f"{prefix}:*")
    )
    assert token.encode() not in everything
    assert hashlib.sha256(token.encode()).hexdigest().encode() in everything
    caller = api_keys.authenticate(token)
    assert caller is not None and (caller.tenant, caller.key_id) == ("acme", key_id)
    assert api_keys.authenticate(token + "x") is None
    assert api_keys.authenticate("not-a-token") is None


def test_list_and_revoke(api_keys):
    first, token = api_keys.create("acme")
    second, _ = api_keys.create("globex", "ops")
    listed = {key.key_id: key for key in api_keys.list()}
    assert set(listed) == {first, second} and listed[second].name == "ops"
    assert (listed[second].tenant, listed[first].name) == ("globex", "")
    api_keys.revoke(first)
    assert api_keys.authenticate(token) is None
    assert [key.key_id for key in api_keys.list()] == [second]
    with pytest.raises(ApiKeyError):
        api_keys.revoke(first)


def test_a_key_stored_by_an_earlier_version_reads(api_keys, redis_url, prefix):
    """The hash layout is the deployment's: fields as text, ``created`` a float's repr."""
    client, keys = redis.Redis.from_url(redis_url), Keys(prefix)
    stored = {"key_id": "0123456789ab", "tenant": "acme", "name": "ci", "created": "1.5e9"}
    client.hset(keys.api_key("f" * 64), mapping=stored)
    client.hset(keys.api_keys, "0123456789ab", "f" * 64)
    (key,) = api_keys.list()
    assert key == ApiKey("0123456789ab", "acme", "ci", 1.5e9)
    assert {k: str(v) for k, v in key.to_hash().items()} == stored | {"created": "1500000000.0"}


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 65, "../etc", "t:1"])
def test_bad_tenants_are_refused(api_keys, tenant):
    with pytest.raises(ApiKeyError):
        api_keys.create(tenant)
    assert api_keys.list() == []


def test_rate_limit_windows(redis_url, prefix):
    client, keys = redis.Redis.from_url(redis_url), Keys(prefix)
    start = 6000.0 * 60 + 15  # 15 s into a window
    verdicts = [rate_limits.hit(client, keys, "k1", "uploads", 2, now=start) for _ in range(3)]
    assert verdicts == [None, None, 45]
    assert rate_limits.hit(client, keys, "k2", "uploads", 2, now=start) is None  # per key
    assert rate_limits.hit(client, keys, "k1", "uploads", 2, now=start + 45) is None  # next one
    assert rate_limits.hit(client, keys, "k1", "uploads", 0, now=start) is None  # 0: no limit
    assert 0 < client.ttl(keys.rate("k1", "uploads", 6000)) <= 120
