"""A poisoning evaluation's figures, paired differences and sanity checks (each failing means
the figures are not to be trusted):

* ``zero_budget_is_clean``: at eps 0 every episode's poisoned accuracy equals its clean one
  exactly (same episodes, same seeds: anything else means the poisoned support set does not
  reach the victim the way the clean one does);
* ``random_not_stronger@eps``: random noise of the same budget does not beat the attack
  (random - poisoned at least minus its 95% interval, paired by episode);
* ``more_steps_not_weaker@eps``: the attack with more steps (on the episodes that ran it) is not
  weaker (more-steps - poisoned at most its 95% interval, paired);
* ``poisoned_monotone``: poisoned accuracy does not rise with eps (by more than ``TOLERANCE``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from models.core import AdaptConfig, paired_interval
from models.evaluation.cells import Cell
from models.evaluation.sanity import TOLERANCE, Check

Rows = dict[tuple[str, float], float]


@dataclass(frozen=True)
class PoisonEvaluation:
    cells: list[Cell]  # kinds: clean, poisoned, random, poisoned-more, attacker-clean/-poisoned
    checks: list[Check]
    paired: list[dict[str, Any]]  # per eps: poisoned - clean, random - poisoned (mean, ci95)
    way: int
    shot: int
    query: int  # the victim's queries per class
    surrogate: int  # the attacker's images per class
    episodes: int
    first_episode: int
    adapt: AdaptConfig
    attack: Any  # models.evaluation.poison_episodes.PoisonAttack

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def cell(self, kind: str, eps: float) -> Cell:
        return next(c for c in self.cells if c.attack == kind and math.isclose(c.eps, eps))

    @property
    def trusted(self) -> bool:
        return all(check.passed for check in self.checks)


def rows_of(episode: dict[str, Any]) -> Rows:
    return {(kind, float(eps)): float(acc) for kind, eps, acc in episode["accuracy"]}


def _eps_of(by: list[Rows], kind: str) -> list[float]:
    return sorted({eps for rows in by for k, eps in rows if k == kind})


def paired(by: list[Rows], a: tuple[str, float], b: tuple[str, float]) -> tuple[float, float, int]:
    """Mean of ``a - b`` over the episodes that have both, its 95% half-width, their count."""
    differences = [rows[a] - rows[b] for rows in by if a in rows and b in rows]
    if not differences:
        return math.nan, math.nan, 0
    mean, half = paired_interval(differences)
    return mean, half, len(differences)


def paired_differences(measured: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per eps: poisoned - clean and random - poisoned, mean and 95% t interval over episodes."""
    by = [rows_of(e) for e in measured]
    out = []
    for eps in _eps_of(by, "random"):
        for name, (a, b) in {
            "poisoned - clean": (("poisoned", eps), ("clean", 0.0)),
            "random - poisoned": (("random", eps), ("poisoned", eps)),
            "more steps - poisoned": (("poisoned-more", eps), ("poisoned", eps)),
        }.items():
            mean, half, n = paired(by, a, b)
            if n:
                out.append({"eps": eps, "difference": name, "mean": mean, "ci95": half, "n": n})
    return out


def _allowance(half: float) -> float:
    return TOLERANCE if math.isnan(half) else max(half, TOLERANCE)


def poisoning_checks(measured: Sequence[dict[str, Any]]) -> list[Check]:
    by = [rows_of(e) for e in measured]
    unequal = [
        int(e["index"])
        for e, rows in zip(measured, by, strict=True)
        if rows.get(("poisoned", 0.0)) != rows[("clean", 0.0)]
    ]
    checks = [
        Check(
            "zero_budget_is_clean",
            not unequal,
            f"eps 0 differs from clean on episodes {unequal[:10]}"
            if unequal
            else f"eps 0 equals clean on all {len(by)} episodes",
        )
    ]
    for eps in _eps_of(by, "random"):
        mean, half, n = paired(by, ("random", eps), ("poisoned", eps))
        checks.append(
            Check(
                f"random_not_stronger@{eps:g}",
                mean >= -_allowance(half),
                f"random - poisoned = {mean:+.3f} ± {half:.3f} over {n} episodes",
            )
        )
    for eps in _eps_of(by, "poisoned-more"):
        mean, half, n = paired(by, ("poisoned-more", eps), ("poisoned", eps))
        checks.append(
            Check(
                f"more_steps_not_weaker@{eps:g}",
                mean <= _allowance(half),
                f"more steps - poisoned = {mean:+.3f} ± {half:.3f} over {n} episodes",
            )
        )
    series = [
        (eps, sum(r[("poisoned", eps)] for r in by) / len(by)) for eps in _eps_of(by, "poisoned")
    ]
    rises = [
        f"{a:.3f}@{e0:g} -> {b:.3f}@{e1:g}"
        for (e0, a), (e1, b) in itertools.pairwise(series)
        if b > a + TOLERANCE
    ]
    checks.append(Check("poisoned_monotone", not rises, "; ".join(rises) or "never rises with eps"))
    return checks
