"""What each part of an adaptation job costs, in image-passes (about one gradient pass over one
image): the job's progress units. An attack on a model costs far more than an adaptation step,
so a job's share done, and the pace its time estimate is drawn from, count this work rather
than its calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from models.attacks import MAX_TARGETS, Attack
from models.core import AdaptConfig


def adaptation_step_cost(images: int, adapt_config: AdaptConfig) -> int:
    """One adaptation step on ``images`` images: its augmented copies, and with FGSM copies
    one pass to make them and one more to fit them."""
    adversarial = adapt_config.adversarial and adapt_config.eps > 0
    return max(images * (1 + adapt_config.augment) * (3 if adversarial else 1), 1)


def attack_cost(attack: Attack, n_way: int) -> int:
    """One attack per image and eps: its steps and restarts, one run per target for APGD-T,
    about a third of a pass per query for Square (no gradient)."""
    passes = attack.budget * attack.restarts
    if attack.kind == "apgd-t":
        passes *= min(n_way - 1, MAX_TARGETS)
    if attack.kind == "square":
        passes //= 3
    return max(passes, 1)


def attacked_eps(grid: Sequence[float]) -> int:
    """The eps of ``grid`` an attack runs at (eps 0 is the clean accuracy)."""
    return max(sum(1 for eps in grid if eps > 0), 1)


def attack_run_units(attack: Attack, examples: int, grid: Sequence[float], n_way: int) -> int:
    """Progress units of ``attack`` on one model: its image-passes over the copies per eps."""
    return examples * attacked_eps(grid) * attack_cost(attack, n_way)


def variants(adapt_config: AdaptConfig) -> dict[str, AdaptConfig]:
    """The report's two adaptations of each fold: robust (clean + FGSM) and clean-only."""
    return {
        "robust": dataclasses.replace(adapt_config, adversarial=True),
        "clean_only": dataclasses.replace(adapt_config, adversarial=False),
    }


def adaptation_units(images: int, adapt_config: AdaptConfig) -> int:
    """Progress units of one adaptation on ``images`` images (as if one step when it has none)."""
    return max(adapt_config.steps, 1) * adaptation_step_cost(images, adapt_config)


def split_units(
    sizes: Sequence[tuple[int, int]],
    suite: Sequence[Attack],
    grid: Sequence[float],
    n_way: int,
    adapt_config: AdaptConfig,
) -> int:
    """Progress units of a report over splits of ``sizes`` (images fitted, images held out):
    both variants' adaptations on each, then every attack on each adapted model."""
    adapting = sum(
        adaptation_units(fitted, variant)
        for fitted, _ in sizes
        for variant in variants(adapt_config).values()
    )
    attacking = sum(
        2 * attack_run_units(attack, held, grid, n_way) for attack in suite for _, held in sizes
    )
    return adapting + attacking
