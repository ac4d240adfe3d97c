"""Running a report's attacks: every attack of the suite over every fold, variant and eps, in
order, while a time budget lasts; per-example correctness, and the cells and checks made from it.

Each attack runs on one batch holding a copy of the held-out examples per eps (per-image
budgets, :mod:`models.attacks.fgsm_pgd`): far cheaper than a call per eps on a few examples each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from models.attacks import Attack, correct, suite_correctness
from models.core import FewShotNet, wilson_interval
from models.evaluation import TOLERANCE, Cell
from models.report.cost import attack_run_units

# (units done, what runs now in words), before each unit (an adaptation step, an attack on one
# adapted model) and once at the end; it may raise to cancel.
# Units: see :func:`models.report.robustness.report_units`.
Progress = Callable[[int, str], None]
VARIANT_WORDS = {"robust": "robust", "clean_only": "clean-only", "model": "served"}


def fold_words(fold: int, folds: int) -> str:
    """ ", fold 2 of 5" when there are folds to tell apart; nothing for one held-out set."""
    return f", fold {fold + 1} of {folds}" if folds > 1 else ""


Deployed = list[tuple[dict[str, FewShotNet], Tensor, Tensor]]  # per fold: models, x, y held out
Correctness = dict[str, dict[tuple[str, float], list[Tensor]]]  # variant -> (attack, eps) -> folds


def cells_from_correctness(correct: dict[tuple[str, float], list[Tensor]]) -> list[Cell]:
    """Per-image accuracy cells with their Wilson 95% interval (``low``, ``high``; no ``ci95``:
    a symmetric half-width would read past 0% or 100% at small n)."""
    cells = []
    for (attack, eps), parts in sorted(correct.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        outcome = torch.cat(parts)
        n, successes = len(outcome), int(outcome.sum())
        low, high = wilson_interval(successes, n)
        cells.append(Cell(attack, eps, successes / n, None, n, low, high))
    return cells


def attack_all(
    deployed: Deployed,
    attacks: Sequence[Attack],
    grid: Sequence[float],
    seed: int,
    time_budget_s: float,
    on_progress: Progress | None = None,
    units_done: int = 0,
    n_way: int = 2,
) -> tuple[Correctness, list[Attack], dict[str, str]]:
    """Every attack over every fold, variant and eps, in order, while the budget lasts (the
    first attack always runs); per-example correctness, the attacks run, the ones skipped.
    Progress: from ``units_done``, :func:`attack_run_units` per attack on one model."""
    started = time.monotonic()
    by_variant: Correctness = {}
    clean = {}
    for fold, (models, x, y) in enumerate(deployed):
        for name, model in models.items():
            clean[(fold, name)] = correct(model, x, y)
            by_variant.setdefault(name, {}).setdefault(("clean", 0.0), []).append(
                clean[(fold, name)].cpu()
            )
    ran: list[Attack] = []
    skipped: dict[str, str] = {}
    done = units_done
    for number, attack in enumerate(attacks, 1):
        if ran and time.monotonic() - started > time_budget_s:
            skipped[attack.name] = f"time budget of {time_budget_s:g} s spent"
            continue
        ran.append(attack)
        for fold, (models, x, y) in enumerate(deployed):
            for name, model in models.items():
                if on_progress is not None:
                    on_progress(
                        done,
                        f"measuring robustness: {attack.name} (attack {number} of {len(attacks)}) "
                        f"on the {VARIANT_WORDS.get(name, name)} variant"
                        f"{fold_words(fold, len(deployed))}",
                    )
                done += attack_run_units(attack, len(y), grid, n_way)
                generator = torch.Generator().manual_seed(seed + fold)
                per_eps = every_eps(model, x, y, attack, grid, generator, clean[(fold, name)])
                for eps, outcome in zip(grid, per_eps, strict=True):
                    by_variant[name].setdefault((attack.name, eps), []).append(outcome.cpu())
    white = [a for a in ran if a.white_box]
    for by_key in by_variant.values():
        for eps in grid:
            for combined, members in (("worst", ran), ("white-box", white)):
                parts = [by_key[("clean", 0.0)]] + [by_key[(a.name, eps)] for a in members]
                by_key[(combined, eps)] = [
                    torch.stack(fold_parts).all(0) for fold_parts in zip(*parts, strict=True)
                ]
    return by_variant, ran, skipped


def every_eps(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    attack: Attack,
    grid: Sequence[float],
    generator: torch.Generator,
    clean: Tensor,
) -> list[Tensor]:
    """Per-example correctness under ``attack`` at each eps of ``grid``, from one call on a
    copy of the examples per eps above 0 (a batch that many times larger costs far less than
    that many calls on a few examples each)."""
    budgets = [eps for eps in grid if eps > 0]
    if not budgets:
        return [clean for _ in grid]
    copies = len(budgets)
    eps_each = torch.tensor(budgets, dtype=x.dtype, device=x.device).repeat_interleave(len(y))
    outcome = suite_correctness(
        model,
        x.repeat(copies, *([1] * (x.dim() - 1))),
        y.repeat(copies),
        attacks=[attack],
        eps=eps_each,
        generator=generator,
        clean=clean.repeat(copies),
    )[attack.name].view(copies, len(y))
    return [clean if eps <= 0 else outcome[budgets.index(eps)] for eps in grid]


def tolerance_for(examples: int) -> float:
    """Sanity-check slack on ``examples`` images: one image, at least the default."""
    return max(TOLERANCE, 1.0 / max(examples, 1))


def blackbox_pairs(
    by_key: dict[tuple[str, float], list[Tensor]], ran: Sequence[Attack]
) -> list[tuple[float, float, float]]:
    """(eps, black-box accuracy, white-box worst accuracy) on the same examples, per eps."""
    black = [a for a in ran if not a.white_box]
    if not black or not any(a.white_box for a in ran):
        return []
    pairs = []
    for _, eps in sorted(k for k in by_key if k[0] == black[0].name):
        accuracy = torch.cat(by_key[(black[0].name, eps)]).double().mean().item()
        white = torch.cat(by_key[("white-box", eps)]).double().mean().item()
        pairs.append((eps, accuracy, white))
    return pairs
