"""One deployed model's accuracy under the attack suite on labelled images: what an evaluation
job measures (the adapted model as it serves, no folds, no clean-only comparison)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from models.attacks import Attack, parse_attacks, runnable
from models.core import FewShotNet
from models.evaluation import SANITY_EPS, sanity_checks, untrusted_reason
from models.report.attacks import (
    Progress,
    attack_all,
    blackbox_pairs,
    cells_from_correctness,
    tolerance_for,
)
from models.report.cost import attack_run_units
from models.report.robustness import threat_model
from models.report.summary import first_lines, headline_eps
from models.report.words import plural


def accuracy_under_attack(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    *,
    n_way: int,
    eps_grid: Sequence[float],
    attacks: Sequence[Attack] | str,
    time_budget_s: float = math.inf,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """One deployed model's accuracy under the suite on labelled images (an evaluation job);
    progress in :func:`evaluation_units`."""
    grid = sorted({0.0, *eps_grid, SANITY_EPS})
    suite, skipped = runnable(parse_attacks(attacks), n_way)
    correct_by, ran, over_budget = attack_all(
        [({"model": model}, x, y)], suite, grid, seed, time_budget_s, on_progress, 0, n_way
    )
    if on_progress is not None:
        on_progress(evaluation_units(attacks, n_way, len(y), eps_grid), "writing the result")
    by_key = correct_by["model"]
    cells = [c for c in cells_from_correctness(by_key) if c.attack != "white-box"]
    checks = sanity_checks(
        cells,
        chance=1 / n_way,
        blackbox_pairs=blackbox_pairs(by_key, ran),
        tolerance=tolerance_for(len(y)),
    )
    untrusted = untrusted_reason(cells, {"model": checks}, n_way)
    summary, _ = first_lines(
        correct_by,
        images=f"On your {plural(len(y), 'labelled image')}",
        eps=headline_eps(grid, 0.1),
        served=None,
        untrusted=untrusted,
        attacks=(len(ran), len(suite)),
    )
    return {
        "summary": summary,
        "untrusted_reason": untrusted,
        "threat_model": threat_model(eps_grid, ran),
        "attacks_skipped": {**skipped, **over_budget},
        "examples": len(y),
        "cells": [c.to_json() for c in cells],
        "checks": [dataclasses.asdict(c) for c in checks],
    }


def evaluation_units(
    attacks: Sequence[Attack] | str, n_way: int, examples: int, eps_grid: Sequence[float]
) -> int:
    """Progress units of :func:`accuracy_under_attack` (:mod:`models.report.cost`)."""
    grid = sorted({0.0, *eps_grid, SANITY_EPS})
    suite = runnable(parse_attacks(attacks), n_way)[0]
    return max(sum(attack_run_units(a, examples, grid, n_way) for a in suite), 1)
