"""API keys: bearer tokens that name a tenant. Only their SHA-256 is stored.

A token is ``fsk_<key id>_<secret>``: 12 hex characters of key id (shown in listings and logs)
and 32 random bytes of secret. Tokens are random, not chosen by people, so one SHA-256 is the
right stored form (a slow password hash would add nothing but latency on every request).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import redis

from common.keys import Keys

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ApiKeyError(ValueError):
    """A bad tenant or key name, or an unknown key id."""


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored (a hash at ``keys.api_key(digest)``): never its token."""

    key_id: str  # 12 hex characters, shown in listings and logs
    tenant: str
    name: str  # a note for people, e.g. who holds the key
    created: float  # unix seconds

    @classmethod
    def from_hash(cls, stored: dict[bytes, bytes]) -> ApiKey:
        fields = {k.decode(): v.decode() for k, v in stored.items()}
        return cls(fields["key_id"], fields["tenant"], fields["name"], float(fields["created"]))

    def to_hash(self) -> dict[str, str | float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the tenant its data belongs to and the key used (for rate limits)."""

    tenant: str
    key_id: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    client: redis.Redis
    keys: Keys

    def create(self, tenant: str, name: str = "") -> tuple[str, str]:
        """A new key for ``tenant``: (key id, token). The token is shown once, never stored."""
        if not TENANT_PATTERN.match(tenant):
            raise ApiKeyError(f"tenant {tenant!r}: use 1-64 letters, digits, '_', '.', '-'")
        if len(name) > 200:
            raise ApiKeyError("the key name is longer than 200 characters")
        key_id = secrets.token_hex(6)
        token = f"fsk_{key_id}_{secrets.token_urlsafe(32)}"
        sha = digest(token)
        record = ApiKey(key_id, tenant, name, created=time.time())
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.api_key(sha), mapping=record.to_hash())
        pipe.hset(self.keys.api_keys, key_id, sha)
        pipe.execute()
        return key_id, token

    def authenticate(self, token: str) -> Caller | None:
        """The caller a token belongs to; None for an unknown or revoked token."""
        if not token.startswith("fsk_") or len(token) > 200:
            return None
        tenant, key_id = self.client.hmget(self.keys.api_key(digest(token)), ["tenant", "key_id"])
        if tenant is None or key_id is None:
            return None
        return Caller(tenant.decode(), key_id.decode())

    def list(self) -> list[ApiKey]:
        """Every key, by key id."""
        listed = []
        for _, sha in sorted(self.client.hgetall(self.keys.api_keys).items()):
            stored = self.client.hgetall(self.keys.api_key(sha.decode()))
            if stored:  # revoked between the two reads
                listed.append(ApiKey.from_hash(stored))
        return listed

    def revoke(self, key_id: str) -> None:
        sha = self.client.hget(self.keys.api_keys, key_id)
        if sha is None:
            raise ApiKeyError(f"no API key with id {key_id!r}")
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.api_key(sha.decode()))
        pipe.hdel(self.keys.api_keys, key_id)
        pipe.execute()
