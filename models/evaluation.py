"""Episode evaluation under attack: accuracy per (attack, eps), 95% CIs, sanity checks.

Each episode adapts the initialization to its support set exactly as the service does, deploys
the frozen-norm model, and attacks every query image white-box in eval mode. ``worst`` counts a
query as correct only when it survives every attack at that eps. Sanity checks follow Carlini et
al. 2019 ("On Evaluating Adversarial Robustness").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from models.adapt import adapt_and_deploy
from models.attacks import fgsm, pgd
from models.config import AdaptConfig, BackboneConfig, HeadInit
from models.episodes import EpisodeSampler
from models.networks import FewShotNet, Params

DEFAULT_EPS_GRID = (0.0, 0.05, 0.1, 0.2)
SANITY_EPS = 0.5  # large budget at which accuracy must fall to chance
TOLERANCE = 0.01  # accuracy rises smaller than this are noise, not a failed check


@dataclass(frozen=True)
class Cell:
    attack: str  # "clean", "fgsm", "pgd" or "worst"
    eps: float
    mean: float  # accuracy: mean over episodes, or over examples in a report
    ci95: float  # half-width of the normal 95% confidence interval of the mean
    n: int  # episodes (episode evaluation) or examples (robustness report) behind the mean


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (1.96 standard errors)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


@torch.no_grad()
def _correct(model: FewShotNet, x: Tensor, y: Tensor) -> Tensor:
    return model(x).argmax(1) == y


def attack_correctness(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    *,
    eps_grid: Sequence[float],
    pgd_steps: int,
    generator: torch.Generator | None = None,
) -> dict[tuple[str, float], Tensor]:
    """Per-example correctness (bool ``[B]``) of a deployed model for each (attack, eps)."""
    clean = _correct(model, x, y)
    results = {("clean", 0.0): clean}
    for eps in eps_grid:
        if eps == 0:
            for attack in ("fgsm", "pgd", "worst"):
                results[(attack, 0.0)] = clean
            continue
        by_fgsm = _correct(model, fgsm(model, x, y, eps=eps), y)
        by_pgd = _correct(model, pgd(model, x, y, eps=eps, steps=pgd_steps, generator=generator), y)
        results[("fgsm", eps)] = by_fgsm
        results[("pgd", eps)] = by_pgd
        results[("worst", eps)] = clean & by_fgsm & by_pgd
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
    pgd_steps: int

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
    pgd_steps: int = 20,
    seed: int = 0,
    sanity: bool = True,
    device: torch.device | str = "cpu",
    on_episode: Callable[[int, int], None] | None = None,
) -> EpisodeEvaluation:
    """Adapt on each episode's support set, attack its queries; aggregate with 95% CIs.

    With ``sanity`` the grid is extended with eps 0.5 for the chance-level check.
    """
    grid = sorted({0.0, *eps_grid, *((SANITY_EPS,) if sanity else ())})
    per_cell: dict[tuple[str, float], list[float]] = {}
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
        outcome = attack_correctness(
            model,
            task.x_query,
            task.y_query,
            eps_grid=grid,
            pgd_steps=pgd_steps,
            generator=generator,
        )
        for key, correct in outcome.items():
            per_cell.setdefault(key, []).append(correct.double().mean().item())
        if on_episode is not None:
            on_episode(index + 1, episodes)
    cells = [
        Cell(attack, eps, *mean_ci95(values), episodes)
        for (attack, eps), values in sorted(per_cell.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return EpisodeEvaluation(
        cells=cells,
        checks=sanity_checks(cells, chance=1 / sampler.way),
        way=sampler.way,
        shot=sampler.shot,
        query=sampler.query,
        episodes=episodes,
        adapt=adapt_config,
        pgd_steps=pgd_steps,
    )


def sanity_checks(cells: Sequence[Cell], *, chance: float) -> list[Check]:
    """Accuracy does not rise with eps; PGD <= FGSM; PGD at eps 0.5 near chance."""
    by_key = {(c.attack, c.eps): c.mean for c in cells}
    checks = []
    for attack in ("fgsm", "pgd"):
        series = sorted((eps, acc) for (a, eps), acc in by_key.items() if a == attack)
        rises = [
            f"{a:.3f}@{e0:g} -> {b:.3f}@{e1:g}"
            for (e0, a), (e1, b) in itertools.pairwise(series)
            if b > a + TOLERANCE
        ]
        checks.append(
            Check(f"{attack}_monotone", not rises, "; ".join(rises) or "never rises with eps")
        )
    stronger = [
        f"eps {eps:g}: pgd {by_key[('pgd', eps)]:.3f} > fgsm {acc:.3f}"
        for (attack, eps), acc in by_key.items()
        if attack == "fgsm" and eps > 0 and by_key[("pgd", eps)] > acc + TOLERANCE
    ]
    checks.append(Check("pgd_le_fgsm", not stronger, "; ".join(stronger) or "holds at every eps"))
    if ("pgd", SANITY_EPS) in by_key:
        large = by_key[("pgd", SANITY_EPS)]
        limit = chance + 0.1
        checks.append(
            Check(
                "chance_at_large_eps",
                large <= limit,
                f"pgd accuracy {large:.3f} at eps {SANITY_EPS} (chance {chance:.3f}, "
                f"limit {limit:.3f})",
            )
        )
    return checks
