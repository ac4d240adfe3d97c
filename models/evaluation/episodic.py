"""Episode evaluation under attack: accuracy per (attack, eps), 95% CIs, sanity checks.

Each episode adapts the initialization to its support set exactly as the service does, deploys
the frozen-norm model, and attacks every query image in eval mode with each attack of the suite
(:mod:`models.attacks.suite`). ``worst`` counts a query as correct only when it survives every
white-box attack at that eps. A black-box attack (Square) runs on every ``blackbox_every``-th
episode as the gradient-masking alarm of the sanity checks (:mod:`models.evaluation.sanity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from models.attacks import (
    LEGACY_ATTACKS,
    STRONG_SUITE,
    Attack,
    correct,
    parse_attacks,
    runnable,
    suite_correctness,
)
from models.core import (
    DEFAULT_EPS_GRID,
    AdaptConfig,
    BackboneConfig,
    ConfigError,
    FewShotNet,
    HeadInit,
    Params,
)
from models.data import EpisodeSampler, Task
from models.evaluation.cells import Cell, EpisodeTally
from models.evaluation.journal import journaled_episodes, params_fingerprint
from models.evaluation.sanity import SANITY_EPS, Check, sanity_checks
from models.meta import adapt_and_deploy

DEFAULT_ATTACKS = LEGACY_ATTACKS + tuple(a for a in STRONG_SUITE if not a.startswith("square"))
DEFAULT_BLACKBOX = "square-1000"


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
    first_episode: int = 0  # the episodes measured: first_episode .. first_episode + episodes - 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def cell(self, attack: str, eps: float) -> Cell:
        return next(c for c in self.cells if c.attack == attack and math.isclose(c.eps, eps))


def attack_episode(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    grid: Sequence[float],
    suite: Sequence[Attack],
    black: Attack | None,
    *,
    generator: torch.Generator,
) -> dict[str, list]:
    """One episode's accuracy per (attack, eps) (``accuracy``: ``[attack, eps, accuracy]``
    rows) and its ``blackbox`` ``[eps, black-box accuracy, white-box worst]`` rows, as JSON."""
    outcome = attack_correctness(model, x, y, eps_grid=grid, attacks=suite, generator=generator)
    rows = [
        [attack, eps, value.double().mean().item()]
        for (attack, eps), value in outcome.items()
        if attack != "white-box"
    ]
    pairs = []
    if black is not None:
        by_black = attack_correctness(
            model, x, y, eps_grid=grid, attacks=[black], generator=generator
        )
        for eps in grid:
            black_accuracy = by_black[(black.name, eps)].double().mean().item()
            rows.append([black.name, eps, black_accuracy])
            pairs.append([eps, black_accuracy, outcome[("worst", eps)].double().mean().item()])
    return {"accuracy": rows, "blackbox": pairs}


def episode_seed(seed: int, index: int) -> int:
    """The seed of episode ``index``'s adaptation and attacks: its own, whatever ran before."""
    return seed * 1_000_003 + index


def adapted_episode(
    config: BackboneConfig,
    backbone: Params,
    sampler: EpisodeSampler,
    index: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit,
    seed: int,
    device: torch.device | str = "cpu",
) -> tuple[Task, FewShotNet]:
    """Episode ``index`` and its adapted model, as :func:`evaluate_episodes` makes them."""
    task = sampler.episode(index, device=device)
    torch.manual_seed(episode_seed(seed, index))  # a random-start adaptation, too
    model = adapt_and_deploy(
        config,
        backbone,
        task.x_support,
        task.y_support,
        n_way=sampler.way,
        adapt_config=adapt_config,
        head_init=head_init,
    )
    return task, model


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
    journal_path: Path | None = None,
    first_episode: int = 0,
) -> EpisodeEvaluation:
    """Adapt on each episode's support set, attack its queries; aggregate with 95% CIs.

    With ``sanity`` the grid is extended with eps 0.5 for the chance-level check. Each episode
    draws its attacks' randomness from its own seed, so an evaluation stopped and resumed from
    ``journal_path`` (:mod:`models.evaluation.journal`) gives the figures of an uninterrupted one.
    ``first_episode`` skips the episodes before it: one evaluation split over processes, each
    with its own journal, merged by :func:`models.evaluation.journal.merge_journals`
    (episode ``i`` is the same in every process).
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    if not 0 <= first_episode < episodes:
        raise ConfigError(f"first episode must lie in [0, {episodes}), got {first_episode}")
    suite, skipped = runnable(parse_attacks(attacks), sampler.way)
    plan = EpisodePlan(
        config,
        backbone,
        sampler,
        adapt_config,
        head_init,
        grid=sorted({0.0, *eps_grid, *((SANITY_EPS,) if sanity else ())}),
        suite=tuple(suite),
        black=parse_attacks([blackbox])[0] if isinstance(blackbox, str) else blackbox,
        blackbox_every=blackbox_every,
        seed=seed,
        device=device,
    )
    tally = EpisodeTally()
    for episode in journaled_episodes(plan, episodes, first_episode, journal_path, on_episode):
        tally.add(episode)
    return plan.evaluation(tally, range(first_episode, episodes), skipped)


@dataclass(frozen=True)
class EpisodePlan:
    """What every episode of one evaluation shares: the initialization, the episodes, the
    adaptation, the eps grid and the attacks."""

    config: BackboneConfig
    backbone: Params
    sampler: EpisodeSampler
    adapt_config: AdaptConfig
    head_init: HeadInit
    grid: list[float]
    suite: tuple[Attack, ...]
    black: Attack | None
    blackbox_every: int
    seed: int
    device: torch.device | str

    def protocol(self) -> dict[str, object]:
        """What decides the figures: a journal written under another protocol is refused."""
        return {
            "backbone": params_fingerprint(self.backbone),
            "config": asdict(self.config),
            "episodes": self.sampler.describe(),
            "head_init": self.head_init,
            "adapt": self.adapt_config.protocol(),
            "eps": self.grid,
            "attacks": [a.name for a in self.suite],
            "blackbox": None if self.black is None else self.black.name,
            "blackbox_every": self.blackbox_every,
            "seed": self.seed,
        }

    def measure(self, index: int) -> dict[str, list]:
        """Episode ``index`` adapted and attacked (:func:`attack_episode`), with its index."""
        task, model = adapted_episode(
            self.config,
            self.backbone,
            self.sampler,
            index,
            self.adapt_config,
            self.head_init,
            self.seed,
            self.device,
        )
        with_black = self.black is not None and index % self.blackbox_every == 0
        episode = attack_episode(
            model,
            task.x_query,
            task.y_query,
            self.grid,
            self.suite,
            self.black if with_black else None,
            generator=torch.Generator().manual_seed(episode_seed(self.seed, index)),
        )
        return episode | {"index": index}

    def evaluation(
        self, tally: EpisodeTally, measured: range, skipped: dict[str, str]
    ) -> EpisodeEvaluation:
        """The figures of the ``measured`` episodes, their sanity checks included."""
        cells = tally.cells()
        way = self.sampler.way
        return EpisodeEvaluation(
            cells=cells,
            checks=sanity_checks(cells, chance=1 / way, blackbox_pairs=tally.pairs()),
            way=way,
            shot=self.sampler.shot,
            query=self.sampler.query,
            episodes=len(measured),
            adapt=self.adapt_config,
            attacks=[a.name for a in self.suite],
            blackbox=None if self.black is None else self.black.name,
            blackbox_episodes=tally.blackbox_episodes,
            skipped=skipped,
            first_episode=measured.start,
        )
