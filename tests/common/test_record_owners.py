"""Stored records are read and written by their owners only, read from the source (ast).

Each record lives in a Redis hash (a job, a model, an API key) or under one key (a tenant's
base models, an idempotent answer). Only its owner (``OWNERS``: the record's class and its
store) runs hash commands or indexes its raw fields; everywhere else in app/, worker/, cli/
and common/ a record is an object with typed attributes. So outside the owners this fails on
any hash command, and on a string-constant subscript or ``.get("...")`` of a variable named as
a record holder (``RECORD_NAMES``): ``record["state"]`` is a raw read that escaped its owner.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "worker", "cli", "common")
HASH_COMMANDS = {
    "hdel",
    "hexists",
    "hget",
    "hgetall",
    "hincrby",
    "hincrbyfloat",
    "hkeys",
    "hlen",
    "hmget",
    "hmset",
    "hrandfield",
    "hscan",
    "hscan_iter",
    "hset",
    "hsetnx",
    "hstrlen",
    "hvals",
}
# the names code gives a record it holds
RECORD_NAMES = {"job", "record", "model", "current", "raw", "fields"}
OWNERS = {
    "common/hash_codec.py": "how record fields are encoded in a hash",
    "common/job_record.py": "the job record",
    "common/model_record.py": "the model record",
    "common/jobs.py": "the job store: transitions",
    "common/job_create.py": "the job store: creation",
    "common/job_cancel.py": "the job store: cancellation",
    "common/job_blobs.py": "the job store: its blobs",
    "common/job_index.py": "the job store: the tenant's job index",
    "common/model_store.py": "the model store",
    "common/model_blobs.py": "the model store (its blobs)",
    "common/tenant_base_models.py": "tenants' base-model records",
    "common/base_model_record.py": "a tenant's base-model record",
    "common/base_model_blobs.py": "tenants' base-model records (their blobs)",
    "common/api_keys.py": "API-key records",
    "common/telemetry.py": "job counts and run-time histograms",
    "common/queue.py": "the queue's turns",
    "app/idempotency.py": "idempotent answers",
}


def _string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def raw_uses(tree: ast.AST) -> list[tuple[int, str, str | None]]:
    """(line, what, the record variable or None) of each hash command and each raw field
    read of a record variable."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, receiver = node.func.attr, node.func.value
            if name in HASH_COMMANDS:
                found.append((node.lineno, f".{name}()", None))
            elif (
                name == "get"
                and isinstance(receiver, ast.Name)
                and receiver.id in RECORD_NAMES
                and node.args
                and _string(node.args[0])
            ):
                found.append(
                    (node.lineno, f"{receiver.id}.get({node.args[0].value!r})", receiver.id)
                )
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in RECORD_NAMES
            and _string(node.slice)
        ):
            found.append((node.lineno, f"{node.value.id}[{node.slice.value!r}]", node.value.id))
    return found


def _sources() -> list[tuple[str, ast.AST]]:
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [(p.relative_to(ROOT).as_posix(), ast.parse(p.read_text())) for p in paths]


def test_only_the_owners_touch_raw_records():
    escaped = [
        f"{path}:{line}: {what}"
        for path, tree in _sources()
        if path not in OWNERS
        for line, what, _ in raw_uses(tree)
    ]
    assert escaped == [], "raw record access outside its owner:\n" + "\n".join(escaped)


def test_every_owner_exists():
    assert all((ROOT / path).exists() for path in OWNERS)


def test_the_scan_sees_a_raw_read_and_a_hash_command():
    tree = ast.parse(
        "def view(record, job, client, key):\n"
        "    client.hgetall(key)\n"
        "    return record['state'], job.get('tenant'), record.state, job.get(key)\n"
    )
    assert sorted(what for _, what, _ in raw_uses(tree)) == [
        ".hgetall()",
        "job.get('tenant')",
        "record['state']",
    ]
