"""Sanity checks of a robustness evaluation (Carlini et al. 2019, "On Evaluating Adversarial
Robustness"; Croce & Hein 2020): each one failing means the figures are not to be trusted.

* every attack's accuracy never rises with eps;
* a bigger budget of the same attack (more steps, more restarts) never raises accuracy;
* no iterative white-box attack is weaker than FGSM;
* the black-box attack never beats the white-box worst case (else gradients are masked);
* at eps 0.5 the worst case is near chance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.attacks import parse_attack
from models.evaluation.cells import Cell

SANITY_EPS = 0.5  # large budget at which accuracy must fall to chance
TOLERANCE = 0.01  # accuracy rises smaller than this are noise, not a failed check
COMBINED = {"clean", "worst", "white-box"}  # cells that are not one attack's


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _attack_names(by_key: dict[tuple[str, float], float]) -> list[str]:
    return sorted({attack for attack, _ in by_key if attack not in COMBINED})


def _monotone(by_key: dict[tuple[str, float], float], attack: str, tolerance: float) -> Check:
    series = sorted((eps, acc) for (a, eps), acc in by_key.items() if a == attack)
    rises = [
        f"{a:.3f}@{e0:g} -> {b:.3f}@{e1:g}"
        for (e0, a), (e1, b) in itertools.pairwise(series)
        if b > a + tolerance
    ]
    return Check(f"{attack}_monotone", not rises, "; ".join(rises) or "never rises with eps")


def _never_weaker(
    by_key: dict[tuple[str, float], float],
    pairs: list[tuple[str, str]],
    name: str,
    tolerance: float,
) -> Check:
    """``stronger`` of each pair at most ``weaker`` + tolerance at every eps > 0 both ran at."""
    found = [
        f"eps {eps:g}: {strong} {by_key[(strong, eps)]:.3f} > {weak} {acc:.3f}"
        for strong, weak in pairs
        for (attack, eps), acc in sorted(by_key.items())
        if attack == weak and eps > 0 and (strong, eps) in by_key
        if by_key[(strong, eps)] > acc + tolerance
    ]
    return Check(name, not found, "; ".join(found) or "holds at every eps")


def sanity_checks(
    cells: Sequence[object],
    *,
    chance: float,
    blackbox_pairs: Sequence[tuple[float, float, float]] = (),
    tolerance: float = TOLERANCE,
) -> list[Check]:
    """Checks over cells (objects with ``attack``, ``eps``, ``mean``); ``blackbox_pairs`` are
    ``(eps, black-box accuracy, white-box worst accuracy)`` measured on the same examples.
    Differences up to ``tolerance`` are noise (a report on n images passes ``1 / n``: one image
    that one attack's random start happened to break)."""
    by_key = {(c.attack, c.eps): c.mean for c in cells}  # type: ignore[attr-defined]
    names = _attack_names(by_key)
    attacks = {name: parse_attack(name) for name in names}
    present = {attack for attack, _ in by_key}
    checks = [_monotone(by_key, name, tolerance) for name in [*names, "worst"] if name in present]
    budget_pairs = [
        (a.name, b.name)
        for a in attacks.values()
        for b in attacks.values()
        if a != b and a.kind == b.kind and a.budget >= b.budget and a.restarts >= b.restarts
    ]
    if budget_pairs:
        checks.append(_never_weaker(by_key, budget_pairs, "more_budget_not_weaker", tolerance))
    if "fgsm" in attacks:
        iterative = [(n, "fgsm") for n, a in attacks.items() if a.white_box and a.kind != "fgsm"]
        checks.append(_never_weaker(by_key, iterative, "iterative_le_fgsm", tolerance))
    if blackbox_pairs:
        beaten = [
            f"eps {eps:g}: black-box {black:.3f} < white-box {white:.3f}"
            for eps, black, white in blackbox_pairs
            if black < white - tolerance
        ]
        checks.append(
            Check(
                "blackbox_weaker",
                not beaten,
                "; ".join(beaten) or "black-box never beats the white-box worst case",
            )
        )
    if ("worst", SANITY_EPS) in by_key:
        large = by_key[("worst", SANITY_EPS)]
        limit = chance + 0.1
        checks.append(
            Check(
                "chance_at_large_eps",
                large <= limit,
                f"worst-case accuracy {large:.3f} at eps {SANITY_EPS} (chance {chance:.3f}, "
                f"limit {limit:.3f})",
            )
        )
    return checks


def untrusted_reason(
    robust: Sequence[Cell], checks: dict[str, Sequence[Check]], n_way: int
) -> str | None:
    """Why the report's figures must not be summarised, in words; None when they may be."""
    failed = sorted({c.name for found in checks.values() for c in found if not c.passed})
    if failed:
        return (
            f"sanity checks failed ({', '.join(failed)}): the attacks may not have worked as "
            "they should on this model, so its robustness figures cannot be trusted"
        )
    clean = next(c for c in robust if c.attack == "clean")
    if clean.low is not None:
        low = clean.low
    else:
        spread = 0.0 if clean.ci95 is None or math.isnan(clean.ci95) else clean.ci95
        low = clean.mean - spread
    if low <= 1 / n_way:
        return (
            f"clean accuracy on held-out examples is {clean.mean:.0%} (95% interval from "
            f"{low:.0%}), not clearly above chance ({1 / n_way:.0%} for {n_way} classes): "
            "the model has not shown that it learned these classes from these images"
        )
    return None
