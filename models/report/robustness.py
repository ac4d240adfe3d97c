"""The robustness report of an adapted model, as the service states it.

Accuracy per eps under each attack of the suite and their per-example worst case, for the
adversarial adaptation and for a clean-only fine-tune of the same initialization (the robustness
gain). The examples come from a labelled validation set when the user sent one, else from k-fold
cross-validation over the support set (k = min(shots, 5), stratified by class) when every class
has at least 2 shots; otherwise the estimate is unavailable, and the report says so.

Attacks run one after the other over every fold and variant, in the order given, each on one
batch holding a copy of the held-out examples per eps; once the time budget is spent the
remaining attacks are skipped and the report names them (the worst case is then over the
attacks that ran, and says so).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from models.attacks import Attack, parse_attacks, runnable
from models.core import AdaptConfig, BackboneConfig, HeadInit, Params
from models.evaluation import SANITY_EPS, Cell, Check, sanity_checks, untrusted_reason
from models.meta import adapt_and_deploy
from models.report.attacks import (
    VARIANT_WORDS,
    Correctness,
    Deployed,
    Progress,
    attack_all,
    blackbox_pairs,
    cells_from_correctness,
    fold_words,
    tolerance_for,
)
from models.report.cost import adaptation_step_cost, adaptation_units, split_units, variants
from models.report.summary import first_lines, headline_eps
from models.report.unavailable import unavailable
from models.report.words import plural

DESCRIPTIONS = {
    "fgsm": "FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps",
    "pgd": "PGD (Madry et al. 2018): {budget} steps of 2.5*eps/{budget} from a random start, "
    "{restarts}",
    "apgd-ce": "APGD-CE (Croce & Hein 2020): {budget} steps, cross-entropy loss",
    "apgd-dlr": "APGD-DLR (Croce & Hein 2020): {budget} steps, DLR loss",
    "apgd-t": "APGD-T (Croce & Hein 2020): {budget} steps per target, targeted DLR loss",
    "square": "Square Attack (Andriushchenko et al. 2020): black-box, {budget} queries",
}


def threat_model(eps_grid: Sequence[float], attacks: Sequence[Attack]) -> dict[str, Any]:
    return {
        "norm": "L-inf",
        "pixel_range": [0.0, 1.0],
        "eps_grid": list(eps_grid),
        "attacker": "knows the adapted weights (white-box) or only its scores (black-box); "
        "attacks each image on its own",
        "attacks": {
            attack.name: DESCRIPTIONS[attack.kind].format(
                budget=attack.budget, restarts=plural(attack.restarts, "restart")
            )
            for attack in attacks
        }
        | {"worst": "an example counts as correct only if it survives every attack that ran"},
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


VALIDATION_SOURCE = "validation set uploaded by the user"
NOTHING_HELD_OUT = (
    "one shot per class and no validation set: there is nothing held out to measure robustness "
    "on. Upload labelled validation images for a report."
)


def _splits(x_support, y_support, x_val, y_val, n_way) -> tuple[list[tuple], str]:
    if x_val is not None and y_val is not None and len(y_val) > 0:
        return [(x_support, y_support, x_val, y_val)], VALIDATION_SOURCE
    splits = [
        (x_support[~mask], y_support[~mask], x_support[mask], y_support[mask])
        for mask in folds_of(y_support, n_way)
    ]
    return splits, f"{len(splits)}-fold cross-validation over the support set"


def _images_phrase(splits: list[tuple], from_validation: bool) -> str:
    held_out = sum(len(split[3]) for split in splits)
    if from_validation:
        return f"On your {plural(held_out, 'validation image')}"
    return (
        f"On {held_out} of your images, each held out in turn ({len(splits)}-fold cross-validation)"
    )


def unavailable_report(
    reason: str,
    eps_grid: Sequence[float],
    suite: Sequence[Attack],
    adapt_config: AdaptConfig,
    *,
    text: str | None = None,
) -> dict[str, Any]:
    """A report that measured nothing, and says why, stating the threat model and adaptation
    it would have measured."""
    described = {
        "threat_model": threat_model(eps_grid, suite),
        "adapt": dataclasses.asdict(adapt_config),
    }
    return unavailable(reason, described, text=text)


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
    attacks: Sequence[Attack] | str = "fgsm,pgd-20",
    time_budget_s: float = math.inf,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring)."""
    grid = sorted({0.0, *eps_grid, SANITY_EPS})
    suite, skipped = runnable(parse_attacks(attacks), n_way)
    splits, source = _splits(x_support, y_support, x_val, y_val, n_way)
    if not splits:
        return unavailable_report(NOTHING_HELD_OUT, eps_grid, suite, adapt_config)
    deployed = _adapt_folds(
        config, backbone, splits, n_way, adapt_config, head_init, seed, on_progress
    )
    sizes = [(len(split[1]), len(split[3])) for split in splits]
    done = split_units(sizes, [], grid, n_way, adapt_config)  # the adaptations'
    correct_by, ran, over_budget = attack_all(
        deployed, suite, grid, seed, time_budget_s, on_progress, done, n_way
    )
    if on_progress is not None:
        on_progress(split_units(sizes, suite, grid, n_way, adapt_config), "writing the report")
    cells, checks = _cells_and_checks(correct_by, ran, n_way)
    served = "robust" if adapt_config.adversarial else "clean_only"
    untrusted = untrusted_reason(cells[served], checks, n_way)  # what the model serves
    summary, recommendation = first_lines(
        correct_by,
        images=_images_phrase(splits, from_validation=source == VALIDATION_SOURCE),
        eps=headline_eps(grid, adapt_config.eps),
        served=served,
        untrusted=untrusted,
        attacks=(len(ran), len(suite)),
        settings=_measured_settings(adapt_config),
    )
    return {
        "summary": summary,
        "recommendation": recommendation,
        "threat_model": threat_model(eps_grid, ran),
        "adapt": dataclasses.asdict(adapt_config),
        "served": served,
        "attacks_skipped": {**skipped, **over_budget},
        "available": True,
        "source": source,
        "examples": int(sum(len(split[3]) for split in splits)),
        **_variants_section(cells, checks, grid),
        "untrusted_reason": untrusted,
    }


def _variants_section(
    cells: dict[str, list[Cell]], checks: dict[str, list[Check]], grid: Sequence[float]
) -> dict[str, Any]:
    """Both variants' cells, the robustness gain (worst-case accuracy, robust minus clean-only)
    and the sanity checks, as the report states them."""
    worst = {name: {c.eps: c.mean for c in cs if c.attack == "worst"} for name, cs in cells.items()}
    return {
        "robust": [c.to_json() for c in cells["robust"]],
        "clean_only": [c.to_json() for c in cells["clean_only"]],
        "gain": {f"{eps:g}": worst["robust"][eps] - worst["clean_only"][eps] for eps in grid},
        "checks": {name: [dataclasses.asdict(c) for c in found] for name, found in checks.items()},
    }


def _adapt_folds(
    config: BackboneConfig,
    backbone: Params,
    splits: list[tuple],
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit,
    seed: int,
    on_progress: Progress | None,
) -> Deployed:
    """Each fold's robust and clean-only adaptations, deployed, with its held-out examples."""
    deployed: Deployed = []
    done = 0
    for fold, (x_fit, y_fit, x_held, y_held) in enumerate(splits):
        models = {}
        for name, variant in variants(adapt_config).items():
            where = f"the {VARIANT_WORDS[name]} variant{fold_words(fold, len(splits))}"
            each = adaptation_step_cost(len(y_fit), variant)
            on_step = _adapting(on_progress, done, each, where)
            on_step(0, adapt_config.steps)
            torch.manual_seed(seed + fold)
            models[name] = adapt_and_deploy(
                config,
                backbone,
                x_fit,
                y_fit,
                n_way=n_way,
                adapt_config=variant,
                head_init=head_init,
                on_step=on_step,
            )
            done += adaptation_units(len(y_fit), variant)
        deployed.append((models, x_held, y_held))
    return deployed


def _adapting(
    on_progress: Progress | None, done: int, each: int, where: str
) -> Callable[..., None]:
    """An adaptation's step callback: its steps (``each`` units) as the report's progress."""

    def on_step(step: int, steps: int, *_: object) -> None:
        if on_progress is not None:
            phase = f"measuring robustness: adapting {where}, step {step} of {steps}"
            on_progress(done + step * each, phase)

    return on_step


def _cells_and_checks(
    correct_by: Correctness, ran: list[Attack], n_way: int
) -> tuple[dict[str, list[Cell]], dict[str, list[Check]]]:
    """Per variant: its cells (without ``white-box``) and its sanity checks."""
    cells = {
        name: [c for c in cells_from_correctness(by_key) if c.attack != "white-box"]
        for name, by_key in correct_by.items()
    }
    checks = {
        name: sanity_checks(
            cells[name],
            chance=1 / n_way,
            blackbox_pairs=blackbox_pairs(by_key, ran),
            tolerance=tolerance_for(len(torch.cat(by_key[("clean", 0.0)]))),
        )
        for name, by_key in correct_by.items()
    }
    return cells, checks


def report_units(
    y_support: Tensor,
    n_way: int,
    validation: int,
    attacks: Sequence[Attack] | str,
    adapt_config: AdaptConfig,
    eps_grid: Sequence[float],
) -> int:
    """Progress units of :func:`robustness_report` (:mod:`models.report.cost`) with
    ``validation`` validation images (0: folds over the support set)."""
    if validation:
        sizes = [(len(y_support), validation)]
    else:
        sizes = [(int((~m).sum()), int(m.sum())) for m in folds_of(y_support, n_way)]
    suite = runnable(parse_attacks(attacks), n_way)[0]
    grid = sorted({0.0, *eps_grid, SANITY_EPS})
    return split_units(sizes, suite, grid, n_way, adapt_config) if sizes else 0


def _measured_settings(adapt_config: AdaptConfig) -> str:
    """What a job must send, besides ``adaptation``, to adapt again as this report measured
    (both variants ran with these steps and copies): empty when they are the plain defaults."""
    plain = AdaptConfig()
    if (adapt_config.augment, adapt_config.steps) == (plain.augment, plain.steps):
        return ""
    return f", augment={adapt_config.augment} and steps={adapt_config.steps}"
