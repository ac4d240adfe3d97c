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
    mean_ci95,
)
from models.data import EpisodeSampler, Task
from models.evaluation.cells import Cell
from models.evaluation.journal import EpisodeJournal, params_fingerprint
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


@dataclass
class EpisodeTally:
    """Episodes' results (:func:`attack_episode`) gathered into cells and black-box pairs."""

    per_cell: dict[tuple[str, float], list[float]] = field(default_factory=dict)
    paired: dict[float, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, episode: dict[str, list]) -> None:
        for attack, eps, accuracy in episode["accuracy"]:
            self.per_cell.setdefault((attack, eps), []).append(accuracy)
        for eps, black_accuracy, white in episode["blackbox"]:
            self.paired.setdefault(eps, []).append((black_accuracy, white))

    def cells(self) -> list[Cell]:
        """Mean and 95% CI over episodes per (attack, eps), sorted by eps then attack."""
        ordered = sorted(self.per_cell.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        return [
            Cell(attack, eps, *mean_ci95(values), len(values)) for (attack, eps), values in ordered
        ]

    def pairs(self) -> list[tuple[float, float, float]]:
        """``(eps, black-box accuracy, white-box worst)`` means over the black-box episodes."""
        return [
            (eps, sum(b for b, _ in rows) / len(rows), sum(w for _, w in rows) / len(rows))
            for eps, rows in sorted(self.paired.items())
        ]

    @property
    def blackbox_episodes(self) -> int:
        return len(self.paired.get(0.0, []))


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
    grid = sorted({0.0, *eps_grid, *((SANITY_EPS,) if sanity else ())})
    suite, skipped = runnable(parse_attacks(attacks), sampler.way)
    black = parse_attacks([blackbox])[0] if isinstance(blackbox, str) else blackbox
    journal = None
    if journal_path is not None:
        protocol = {
            "backbone": params_fingerprint(backbone),
            "config": asdict(config),
            "episodes": sampler.describe(),
            "head_init": head_init,
            "adapt": adapt_config.protocol(),
            "eps": grid,
            "attacks": [a.name for a in suite],
            "blackbox": None if black is None else black.name,
            "blackbox_every": blackbox_every,
            "seed": seed,
        }
        journal = EpisodeJournal(journal_path, protocol)
    tally = EpisodeTally()
    for index in range(first_episode, episodes):
        episode = journal.get(index) if journal is not None else None
        if episode is None:
            task, model = adapted_episode(
                config, backbone, sampler, index, adapt_config, head_init, seed, device
            )
            with_black = black is not None and index % blackbox_every == 0
            episode = attack_episode(
                model,
                task.x_query,
                task.y_query,
                grid,
                suite,
                black if with_black else None,
                generator=torch.Generator().manual_seed(episode_seed(seed, index)),
            )
            episode["index"] = index
            if journal is not None:
                journal.record(episode)
        tally.add(episode)
        if on_episode is not None:
            on_episode(index + 1, episodes)
    cells = tally.cells()
    return EpisodeEvaluation(
        cells=cells,
        checks=sanity_checks(cells, chance=1 / sampler.way, blackbox_pairs=tally.pairs()),
        way=sampler.way,
        shot=sampler.shot,
        query=sampler.query,
        episodes=episodes - first_episode,
        adapt=adapt_config,
        attacks=[a.name for a in suite],
        blackbox=None if black is None else black.name,
        blackbox_episodes=tally.blackbox_episodes,
        skipped=skipped,
        first_episode=first_episode,
    )
