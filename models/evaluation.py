"""Episode evaluation under attack: accuracy per (attack, eps), 95% CIs, sanity checks.

Each episode adapts the initialization to its support set exactly as the service does, deploys
the frozen-norm model, and attacks every query image in eval mode with each attack of the suite
(:mod:`models.attack_suite`). ``worst`` counts a query as correct only when it survives every
white-box attack at that eps. A black-box attack (Square) runs on every ``blackbox_every``-th
episode as the gradient-masking alarm of the sanity checks (:mod:`models.sanity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from models.adapt import adapt_and_deploy
from models.attack_suite import (
    LEGACY_ATTACKS,
    STRONG_SUITE,
    Attack,
    correct,
    parse_attacks,
    runnable,
    suite_correctness,
)
from models.config import AdaptConfig, BackboneConfig, HeadInit
from models.episodes import EpisodeSampler
from models.networks import FewShotNet, Params
from models.sanity import SANITY_EPS, Check, sanity_checks

__all__ = ["SANITY_EPS", "Cell", "Check", "attack_correctness", "evaluate_episodes"]

DEFAULT_EPS_GRID = (0.0, 0.05, 0.1, 0.2)
DEFAULT_ATTACKS = LEGACY_ATTACKS + tuple(a for a in STRONG_SUITE if not a.startswith("square"))
DEFAULT_BLACKBOX = "square-1000"


@dataclass(frozen=True)
class Cell:
    attack: str  # "clean", an attack's name ("pgd-20", "apgd-t-100", ...), "worst"
    eps: float
    mean: float  # accuracy: mean over episodes, or over examples in a report
    ci95: float  # half-width of the 95% confidence interval of the mean
    n: int  # episodes (episode evaluation) or examples (robustness report) behind the mean


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (1.96 standard errors)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


def attack_correctness(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    *,
    eps_grid: Sequence[float],
    attacks: Sequence[Attack],
    generator: torch.Generator,
) -> dict[tuple[str, float], Tensor]:
    """Per-example correctness (bool ``[B]``) of a deployed model for each (attack, eps), with
    ``("clean", 0)``, ``("worst", eps)`` and ``("white-box", eps)``."""
    clean = correct(model, x, y)
    results = {("clean", 0.0): clean}
    for eps in eps_grid:
        outcome = suite_correctness(
            model, x, y, attacks=attacks, eps=eps, generator=generator, clean=clean
        )
        results.update({(name, float(eps)): value for name, value in outcome.items()})
    return results


@dataclass(frozen=True)
class EpisodeEvaluation:
    cells: list[Cell]
    checks: list[Check]
    way: int
    shot: int
    query: int
    episodes: int
    adapt: AdaptConfig
    attacks: list[str]  # the white-box suite behind ``worst``
    blackbox: str | None  # the black-box attack of the gradient-masking check
    blackbox_episodes: int  # episodes the black-box attack ran on
    skipped: dict[str, str] = field(default_factory=dict)  # attacks that could not run, and why

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def cell(self, attack: str, eps: float) -> Cell:
        return next(c for c in self.cells if c.attack == attack and math.isclose(c.eps, eps))


def evaluate_episodes(
    config: BackboneConfig,
    backbone: Params,
    sampler: EpisodeSampler,
    *,
    episodes: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    eps_grid: Sequence[float] = DEFAULT_EPS_GRID,
    attacks: Sequence[Attack] | str = DEFAULT_ATTACKS,
    blackbox: Attack | str | None = DEFAULT_BLACKBOX,
    blackbox_every: int = 10,
    seed: int = 0,
    sanity: bool = True,
    device: torch.device | str = "cpu",
    on_episode: Callable[[int, int], None] | None = None,
) -> EpisodeEvaluation:
    """Adapt on each episode's support set, attack its queries; aggregate with 95% CIs.

    With ``sanity`` the grid is extended with eps 0.5 for the chance-level check.
    """
    grid = sorted({0.0, *eps_grid, *((SANITY_EPS,) if sanity else ())})
    suite, skipped = runnable(parse_attacks(attacks), sampler.way)
    black = parse_attacks([blackbox])[0] if isinstance(blackbox, str) else blackbox
    per_cell: dict[tuple[str, float], list[float]] = {}
    paired: dict[float, list[tuple[float, float]]] = {}
    generator = torch.Generator().manual_seed(seed)
    for index in range(episodes):
        task = sampler.episode(index, device=device)
        model = adapt_and_deploy(
            config,
            backbone,
            task.x_support,
            task.y_support,
            n_way=sampler.way,
            adapt_config=adapt_config,
            head_init=head_init,
        )
        attacked = (task.x_query, task.y_query)
        outcome = attack_correctness(
            model, *attacked, eps_grid=grid, attacks=suite, generator=generator
        )
        if black is not None and index % blackbox_every == 0:
            by_black = attack_correctness(
                model, *attacked, eps_grid=grid, attacks=[black], generator=generator
            )
            for eps in grid:
                black_accuracy = by_black[(black.name, eps)].double().mean().item()
                white = outcome[("worst", eps)].double().mean().item()
                paired.setdefault(eps, []).append((black_accuracy, white))
                per_cell.setdefault((black.name, eps), []).append(black_accuracy)
        for key, correct_now in outcome.items():
            if key[0] != "white-box":
                per_cell.setdefault(key, []).append(correct_now.double().mean().item())
        if on_episode is not None:
            on_episode(index + 1, episodes)
    cells = [
        Cell(attack, eps, *mean_ci95(values), len(values))
        for (attack, eps), values in sorted(per_cell.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    pairs = [
        (eps, sum(b for b, _ in rows) / len(rows), sum(w for _, w in rows) / len(rows))
        for eps, rows in sorted(paired.items())
    ]
    return EpisodeEvaluation(
        cells=cells,
        checks=sanity_checks(cells, chance=1 / sampler.way, blackbox_pairs=pairs),
        way=sampler.way,
        shot=sampler.shot,
        query=sampler.query,
        episodes=episodes,
        adapt=adapt_config,
        attacks=[a.name for a in suite],
        blackbox=None if black is None else black.name,
        blackbox_episodes=len(paired.get(0.0, [])),
        skipped=skipped,
    )
