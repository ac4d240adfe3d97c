"""A report that measured nothing and says why: the one builder of its shape, and of the
summary a model's record shows of it.

A report is unavailable when nothing is held out to measure on, when none was asked for, while
its job still computes it (``pending``), and when its job ended before it (unfinished). The last
is written by common/'s stores, which cannot import models/: they are given
:func:`unfinished_report` when they are built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# what an unavailable report says of itself; the rest of what it is given describes it
_OWN_FIELDS = ("summary", "recommendation", "available", "source", "examples", "reason")


def unavailable(
    reason: str, described: Mapping[str, Any], *, text: str | None = None
) -> dict[str, Any]:
    """A report that measured nothing because of ``reason``, keeping what ``described`` says
    of it (threat model, adaptation, level); ``text`` is its sentence (by default "No
    robustness estimate: ``reason``")."""
    sentence = f"No robustness estimate: {reason}" if text is None else text
    return {
        "summary": {"trustworthy": None, "text": sentence},
        "recommendation": None,
        **{name: value for name, value in described.items() if name not in _OWN_FIELDS},
        "available": False,
        "source": None,
        "examples": 0,
        "reason": reason,
    }


def unavailable_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a model's record shows of an unavailable report: why, in its sentence, with its
    level and whether it is pending when it says so."""
    summary: dict[str, Any] = {"available": False, "reason": report["reason"]}
    summary |= {name: report[name] for name in ("level", "pending") if name in report}
    return summary | {"text": report["summary"]["text"], "recommendation": None}


def unfinished_report(
    why: str, pending: bytes | str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and summary of a model whose job ended before its report did: the
    ``pending`` report's threat model, adaptation and level (when there is one), with ``why``
    in place of figures."""
    described = {k: v for k, v in json.loads(pending or "{}").items() if k != "pending"}
    report = unavailable(why, described)
    return report, unavailable_summary(report)
