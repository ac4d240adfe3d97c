"""How the records' fields travel in a Redis hash: text in, typed values out, and back (numbers
as redis-py writes them, a bool as 1 or 0, lists and dicts as JSON, an enum as its value, None
never written)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

RawHash = Mapping[bytes, bytes] | Mapping[str, str]  # what HGETALL answers, or its decoding
Fields = dict[str, str | int | float]  # what HSET writes


def decoded(raw: RawHash) -> dict[str, str]:
    """A hash's fields and values as text."""
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }


def moment(text: str | None) -> float | None:
    """A unix time field: None when absent or empty."""
    return float(text) if text else None


def json_or_none(text: str | None) -> Any:
    """A JSON field: None when absent or empty."""
    return json.loads(text) if text else None


def encoded(values: Mapping[str, Any]) -> Fields:
    """The fields to write of ``values``: None stays absent."""
    out: Fields = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, Enum):
            out[name] = value.value
        elif isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, dict | list | tuple):
            out[name] = json.dumps(list(value) if isinstance(value, tuple) else value)
        else:
            out[name] = value
    return out
