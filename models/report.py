"""The robustness report of an adapted model, as the service states it.

Accuracy per eps under FGSM, PGD and their per-example worst case, for the adversarial
adaptation and for a clean-only fine-tune of the same initialization (the robustness gain).
The examples come from a labelled validation set when the user sent one, else from k-fold
cross-validation over the support set (k = min(shots, 5), stratified by class) when every class
has at least 2 shots; otherwise the estimate is unavailable, and the report says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from models.adapt import adapt_and_deploy
from models.config import AdaptConfig, BackboneConfig, HeadInit
from models.evaluation import SANITY_EPS, Cell, attack_correctness, sanity_checks
from models.networks import FewShotNet, Params

Progress = Callable[[], None]  # called once per adaptation done (may raise to cancel)


def threat_model(eps_grid: Sequence[float], pgd_steps: int) -> dict[str, Any]:
    return {
        "norm": "L-inf",
        "pixel_range": [0.0, 1.0],
        "eps_grid": list(eps_grid),
        "attacker": "white-box, knows the adapted weights; attacks each image on its own",
        "attacks": {
            "fgsm": "Goodfellow et al. 2015, one signed-gradient step of size eps",
            "pgd": f"Madry et al. 2018, random start, {pgd_steps} steps of 2.5*eps/{pgd_steps}",
            "worst": "an example counts as correct only if it survives every attack",
        },
    }


def folds_of(y: Tensor, n_way: int) -> list[Tensor]:
    """Stratified fold masks over the support set; [] when some class has only one shot."""
    counts = torch.bincount(y, minlength=n_way)
    k = min(int(counts.min()), 5)
    if k < 2:
        return []
    rank = torch.zeros_like(y)
    for cls in range(n_way):
        members = (y == cls).nonzero().flatten()
        rank[members] = torch.arange(len(members))
    return [rank % k == fold for fold in range(k)]


def cells_from_correctness(correct: dict[tuple[str, float], list[Tensor]]) -> list[Cell]:
    cells = []
    for (attack, eps), parts in sorted(correct.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        outcome = torch.cat(parts).double()
        n, p = len(outcome), outcome.mean().item()
        cells.append(Cell(attack, eps, p, 1.96 * math.sqrt(p * (1 - p) / n), n))
    return cells


def _score(
    models: dict[str, FewShotNet],
    x: Tensor,
    y: Tensor,
    grid: Sequence[float],
    pgd_steps: int,
    seed: int,
    into: dict[str, dict[tuple[str, float], list[Tensor]]],
) -> None:
    for name, model in models.items():
        gen = torch.Generator().manual_seed(seed)
        outcome = attack_correctness(model, x, y, eps_grid=grid, pgd_steps=pgd_steps, generator=gen)
        for key, correct in outcome.items():
            into[name].setdefault(key, []).append(correct.cpu())


def robustness_report(
    config: BackboneConfig,
    backbone: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    eps_grid: Sequence[float] = (0.0, 0.05, 0.1, 0.2),
    pgd_steps: int = 20,
    seed: int = 0,
    on_adapted: Progress | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring)."""
    grid = sorted({0.0, *eps_grid, SANITY_EPS})
    clean_config = dataclasses.replace(adapt_config, adversarial=False)
    variants = {"robust": adapt_config, "clean_only": clean_config}
    base = {
        "threat_model": threat_model(eps_grid, pgd_steps),
        "adapt": dataclasses.asdict(adapt_config),
    }
    if x_val is not None and y_val is not None and len(y_val) > 0:
        splits = [(x_support, y_support, x_val, y_val)]
        source = "validation set uploaded by the user"
    else:
        splits = [
            (x_support[~mask], y_support[~mask], x_support[mask], y_support[mask])
            for mask in folds_of(y_support, n_way)
        ]
        source = f"{len(splits)}-fold cross-validation over the support set"
    if not splits:
        return {
            **base,
            "available": False,
            "source": None,
            "examples": 0,
            "reason": "one shot per class and no validation set: there is nothing held out to "
            "measure robustness on. Upload labelled validation images for a report.",
        }
    correct: dict[str, dict[tuple[str, float], list[Tensor]]] = {name: {} for name in variants}
    for fold, (x_fit, y_fit, x_held, y_held) in enumerate(splits):
        deployed = {}
        for name, variant in variants.items():
            torch.manual_seed(seed + fold)
            deployed[name] = adapt_and_deploy(
                config,
                backbone,
                x_fit,
                y_fit,
                n_way=n_way,
                adapt_config=variant,
                head_init=head_init,
            )
            if on_adapted is not None:
                on_adapted()
        _score(deployed, x_held, y_held, grid, pgd_steps, seed + fold, correct)
    cells = {name: cells_from_correctness(by_key) for name, by_key in correct.items()}
    by_key = {name: {(c.attack, c.eps): c for c in cs} for name, cs in cells.items()}
    return {
        **base,
        "available": True,
        "source": source,
        "examples": int(sum(len(s[3]) for s in splits)),
        "robust": [dataclasses.asdict(c) for c in cells["robust"]],
        "clean_only": [dataclasses.asdict(c) for c in cells["clean_only"]],
        "gain": {
            f"{eps:g}": by_key["robust"][("worst", eps)].mean
            - by_key["clean_only"][("worst", eps)].mean
            for eps in grid
        },
        "checks": {
            name: [dataclasses.asdict(c) for c in sanity_checks(cs, chance=1 / n_way)]
            for name, cs in cells.items()
        },
    }


def adaptations_needed(y_support: Tensor, n_way: int, has_validation: bool) -> int:
    """How many adaptations :func:`robustness_report` will run (for progress totals)."""
    return 2 * (1 if has_validation else len(folds_of(y_support, n_way)))
