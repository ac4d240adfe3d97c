"""``fewshot keys``: create, list and revoke the API keys of the service's Redis (REDIS_URL, else
the embedded Redis of ``fewshot serve`` / ``make run``, whether it runs or not)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import redis
import typer

from cli.console import err, fail
from cli.local_redis import LocalRedisError, command_stores
from common.api_keys import ApiKey, ApiKeyError, ApiKeys
from common.settings import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@contextmanager
def _api_keys() -> Iterator[ApiKeys]:
    """The keys of the service's Redis (:func:`cli.local_redis.command_stores`); says which."""
    with command_stores(lambda line: err.print(line, soft_wrap=True)) as stores:
        yield stores.api_keys


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="whose jobs and models the key reaches")],
    name: Annotated[str, typer.Option(help="a note for people, e.g. who holds the key")] = "",
) -> None:
    """Make a key and print its token once (only its SHA-256 is stored)."""
    try:
        with _api_keys() as api_keys:
            key_id, token = api_keys.create(tenant, name)
    except (ApiKeyError, redis.RedisError, LocalRedisError) as error:
        raise fail(error) from error
    err.print(f"key {key_id} for tenant {tenant!r}; the token is shown only now:")
    typer.echo(token)


@app.command("list")
def list_keys() -> None:
    """Key ids, tenants, names and creation times as JSON lines (never the tokens)."""
    try:
        with _api_keys() as api_keys:
            listed = api_keys.list()
    except (redis.RedisError, LocalRedisError) as error:
        raise fail(error) from error
    for key in listed:
        typer.echo(json.dumps(_listing(key)))


def _listing(key: ApiKey) -> dict[str, str]:
    """A key as ``keys list`` prints it: every field as text, ``created`` as Redis holds it."""
    return {
        "key_id": key.key_id,
        "tenant": key.tenant,
        "name": key.name,
        "created": repr(key.created),
    }


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id from `fewshot keys list`")],
) -> None:
    """Revoke a key: running API processes refuse it within FEWSHOT_AUTH_CACHE_S (2 s)."""
    try:
        with _api_keys() as api_keys:
            api_keys.revoke(key_id)
    except (ApiKeyError, redis.RedisError, LocalRedisError) as error:
        raise fail(error) from error
    bound = get_settings().auth_cache_s
    err.print(f"key {key_id} revoked: API processes refuse it within {bound:g} s")
