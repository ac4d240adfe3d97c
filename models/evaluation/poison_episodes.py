"""Support-set poisoning measured on episodes: clean-query accuracy of the service's adapted
model when its support set is clean, poisoned (:mod:`models.evaluation.poisoning`), or moved by
random noise of the same budget, paired by episode, with 95% CIs and sanity checks.

Each episode draws ``query + surrogate`` images per class besides the support set: the first
``query`` are the victim's queries (the same images as :func:`evaluate_episodes`' episodes with
that ``query``, so clean figures compare), the rest the attacker's surrogate set (or, with the
``oracle`` objective, the attacker optimises on the victim's queries themselves). The victim
adapts with the episode's own seed (:func:`models.evaluation.adapted_episode`'s), whatever it
adapts on, so eps 0 must give the clean accuracy exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from models.attacks import correct
from models.core import (
    AdaptConfig,
    BackboneConfig,
    ConfigError,
    HeadInit,
    Params,
)
from models.data import EpisodeSampler, Task
from models.evaluation.cells import Cell, EpisodeTally
from models.evaluation.episodic import episode_seed
from models.evaluation.journal import journaled_episodes, params_fingerprint
from models.evaluation.poison_checks import (
    PoisonEvaluation,
    paired_differences,
    poisoning_checks,
)
from models.evaluation.poisoning import (
    adaptation_objective,
    poison_mask,
    poison_support,
    random_poison,
)
from models.meta import adapt_and_deploy

OBJECTIVES = ("surrogate", "oracle")


@dataclass(frozen=True)
class PoisonAttack:
    """The attacker: which images it controls, its budget grid, its PGD and its objective."""

    mode: str = "all"  # models.evaluation.poisoning.POISON_MODES
    eps_grid: tuple[float, ...] = (0.05, 0.1)
    steps: int = 10
    more_steps: int = 20  # the "more steps never weaker" check's step count ...
    more_steps_every: int = 5  # ... on every N-th episode (0: never)
    objective: str = "surrogate"  # or "oracle": the victim's queries (an upper bound)
    random_start: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.steps < 1 or self.more_steps_every < 0:
            raise ConfigError("poisoning needs steps >= 1 and more_steps_every >= 0")
        if self.more_steps_every and self.more_steps <= self.steps:
            raise ConfigError("more_steps must exceed steps")
        if any(not 0 <= eps <= 1 for eps in self.eps_grid):
            raise ConfigError("poisoning eps must lie in [0, 1]")
        poison_mask(torch.zeros(1, dtype=torch.long), self.mode)  # refuses an unknown mode


@dataclass(frozen=True)
class PoisonPlan:
    """What every episode of one poisoning evaluation shares."""

    config: BackboneConfig
    backbone: Params
    sampler: EpisodeSampler  # draws query + surrogate images per class
    query: int  # the victim's queries per class; the rest of the sampler's are the surrogate
    adapt_config: AdaptConfig
    head_init: HeadInit
    attack: PoisonAttack
    seed: int = 0
    device: torch.device | str = "cpu"

    def __post_init__(self) -> None:
        if not 1 <= self.query < self.sampler.query:
            raise ConfigError("poisoning needs 1 <= query < the sampler's query (a surrogate set)")

    @property
    def grid(self) -> list[float]:
        return sorted({0.0, *self.attack.eps_grid})

    def protocol(self) -> dict[str, object]:
        return {
            "kind": "support-set poisoning",
            "backbone": params_fingerprint(self.backbone),
            "config": asdict(self.config),
            "episodes": self.sampler.describe() | {"victim_query": self.query},
            "head_init": self.head_init,
            "adapt": self.adapt_config.protocol(),
            "attack": asdict(self.attack) | {"eps_grid": self.grid},
            "seed": self.seed,
        }

    def split(self, task: Task) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The victim's queries and the attacker's surrogate images (class by class)."""
        per_class = self.sampler.query
        rows = torch.arange(len(task.y_query), device=task.y_query.device) % per_class
        victim, surrogate = rows < self.query, rows >= self.query
        x, y = task.x_query, task.y_query
        return x[victim], y[victim], x[surrogate], y[surrogate]

    def victim_accuracy(self, index: int, x_support: Tensor, task: Task, x: Tensor, y: Tensor):
        """Accuracy on ``x`` of the service's model adapted on ``x_support`` (episode seed)."""
        torch.manual_seed(episode_seed(self.seed, index))
        model = adapt_and_deploy(
            self.config,
            self.backbone,
            x_support,
            task.y_support,
            n_way=self.sampler.way,
            adapt_config=self.adapt_config,
            head_init=self.head_init,
        )
        return correct(model, x, y).double().mean().item()

    def measure(self, index: int) -> dict[str, object]:
        """Episode ``index``: ``accuracy`` rows ``[kind, eps, accuracy]`` with kind ``clean``,
        ``poisoned``, ``random``, ``poisoned-more`` (the check's step count, some episodes),
        ``attacker-clean`` / ``attacker-poisoned`` (the attacker's own objective)."""
        task = self.sampler.episode(index, device=self.device)
        x_victim, y_victim, x_surrogate, y_surrogate = self.split(task)
        if self.attack.objective == "oracle":
            x_surrogate, y_surrogate = x_victim, y_victim
        mask = poison_mask(task.y_support, self.attack.mode)
        objective = adaptation_objective(
            self.config,
            self.backbone,
            task.y_support,
            x_surrogate,
            y_surrogate,
            n_way=self.sampler.way,
            adapt_config=self.adapt_config,
            head_init=self.head_init,
            seed=episode_seed(self.seed + 1, index),  # the attacker's draws, not the victim's
        )
        victim = lambda support: self.victim_accuracy(index, support, task, x_victim, y_victim)  # noqa: E731
        rows = [["clean", 0.0, victim(task.x_support)]]
        generator = torch.Generator().manual_seed(episode_seed(self.seed, index))
        more = self.attack.more_steps_every and index % self.attack.more_steps_every == 0
        for eps in self.grid:
            result = self._poison(objective, task.x_support, mask, eps, self.attack.steps)
            rows.append(["poisoned", eps, victim(result.x)])
            if eps == 0:  # poison_support returned the support set itself
                continue
            noisy = random_poison(task.x_support, mask, eps=eps, generator=generator)
            rows.append(["random", eps, victim(noisy)])
            rows.append(["attacker-clean", eps, result.history[0][0]])
            rows.append(["attacker-poisoned", eps, result.attacker_accuracy])
            if more:
                stronger = self._poison(
                    objective, task.x_support, mask, eps, self.attack.more_steps
                )
                rows.append(["poisoned-more", eps, victim(stronger.x)])
        return {"index": index, "accuracy": rows, "blackbox": []}

    def _poison(self, objective, x_support: Tensor, mask: Tensor, eps: float, steps: int):
        return poison_support(
            objective,
            x_support,
            mask,
            eps=eps,
            steps=steps,
            random_start=self.attack.random_start,
            generator=torch.Generator().manual_seed(steps),
        )


def evaluate_poisoning(
    plan: PoisonPlan,
    *,
    episodes: int,
    first_episode: int = 0,
    journal_path: Path | None = None,
    on_episode: Callable[[int, int], None] | None = None,
) -> PoisonEvaluation:
    """Episodes ``first_episode .. episodes - 1`` of ``plan``, each read from ``journal_path``
    when it is there (resumable, like :func:`evaluate_episodes`) or measured and recorded."""
    if episodes < 1 or not 0 <= first_episode < episodes:
        raise ConfigError(f"need episodes >= 1 and 0 <= first episode < {episodes}")
    measured = journaled_episodes(plan, episodes, first_episode, journal_path, on_episode)
    return summarise(plan, list(measured))


def summarise(plan: PoisonPlan, measured: Sequence[dict]) -> PoisonEvaluation:
    tally = EpisodeTally()
    for episode in measured:
        tally.add(episode)
    cells: list[Cell] = tally.cells()
    return PoisonEvaluation(
        cells=cells,
        checks=poisoning_checks(measured),
        way=plan.sampler.way,
        shot=plan.sampler.shot,
        query=plan.query,
        surrogate=plan.sampler.query - plan.query,
        episodes=len(measured),
        first_episode=min(int(e["index"]) for e in measured),
        adapt=plan.adapt_config,
        attack=plan.attack,
        paired=paired_differences(measured),
    )
