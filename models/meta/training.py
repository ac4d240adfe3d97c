"""The meta-training loop: meta-steps, periodic validation, checkpoints, exact resumption.

Meta-batch ``i`` is made of episodes ``i * meta_batch + j`` of the training sampler, so a run
resumed from a checkpoint at iteration ``i`` draws the same tasks it would have drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from models.core import ConfigError, FewShotNet, MetaConfig
from models.data import EpisodeSampler, Task
from models.meta.adml import StepMetrics, accumulate_meta_gradient


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run (``torchrun``); (0, 1) alone."""

    rank: int = 0
    world: int = 1

    def share(self, meta_batch: int) -> range:
        """The indices of the meta-batch's tasks this rank computes."""
        return range(self.rank, meta_batch, self.world)


@dataclass
class TrainState:
    """What a resumed run needs besides the weights and the optimizer."""

    iteration: int = 0  # meta-steps done
    wall_time_s: float = 0.0  # training time summed over all sessions of this run
    validation: list[dict[str, Any]] = field(default_factory=list)  # the validation curve


ProgressCallback = Callable[[int, StepMetrics], None]
ValidateCallback = Callable[[FewShotNet], dict[str, Any]]
SaveCallback = Callable[[TrainState], None]


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """Optimizer state flattened to ``state.{param_index}.{key}`` tensors for safetensors."""
    flat = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            flat[f"state.{index}.{key}"] = torch.as_tensor(value)
    return flat


def restore_optimizer(optimizer: torch.optim.Optimizer, flat: dict[str, Tensor]) -> None:
    """Inverse of :func:`optimizer_tensors` for an optimizer built with the same config."""
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in flat.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(
        {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
    )


def distributed_meta_step(
    model: FewShotNet,
    optimizer: torch.optim.Optimizer,
    tasks: list[Task],
    config: MetaConfig,
    ranks: Ranks,
    *,
    eps: float | None = None,
) -> StepMetrics:
    """One outer update where each rank holds only its share of the meta-batch's tasks.

    Every rank scales by the whole meta-batch, gradients are summed across ranks, and every
    rank takes the same optimizer step, so all ranks keep identical weights.
    """
    optimizer.zero_grad(set_to_none=True)
    metrics = accumulate_meta_gradient(model, tasks, config, scale=1.0 / config.meta_batch, eps=eps)
    if ranks.world == 1:
        optimizer.step()
        return metrics
    for param in optimizer.param_groups[0]["params"]:
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
    adversarial = metrics.adversarial_accuracy
    sums = torch.tensor(
        [metrics.loss, metrics.clean_accuracy, adversarial or 0.0], dtype=torch.float64
    ) * len(tasks)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    optimizer.step()
    loss, clean, adv = (sums / config.meta_batch).tolist()
    return StepMetrics(loss, clean, None if adversarial is None else adv)


def make_optimizer(model: FewShotNet, config: MetaConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        [p for name, p in model.named_parameters() if not name.startswith("head.")],
        lr=config.meta_lr,
    )


def meta_train(
    model: FewShotNet,
    optimizer: torch.optim.Optimizer,
    sampler: EpisodeSampler,
    config: MetaConfig,
    state: TrainState,
    *,
    iterations: int,
    validate_every: int,
    validate: ValidateCallback | None = None,
    save: SaveCallback | None = None,
    on_step: ProgressCallback | None = None,
    device: torch.device | str = "cpu",
    ranks: Ranks = Ranks(),
) -> TrainState:
    """Run meta-steps from ``state.iteration`` up to ``iterations``; validate and save every
    ``validate_every`` steps and at the end. ``state`` is updated in place and returned.

    Data-parallel (``ranks.world > 1``): each rank computes its share of every meta-batch;
    only rank 0 should be given ``validate``, ``save`` and ``on_step``."""
    if config.meta_batch < ranks.world:
        raise ConfigError(f"meta_batch {config.meta_batch} is smaller than {ranks.world} ranks")
    model.train()
    while state.iteration < iterations:
        started = time.perf_counter()
        base = state.iteration * config.meta_batch
        tasks = [sampler.episode(base + j, device=device) for j in ranks.share(config.meta_batch)]
        eps = config.eps_at(state.iteration)
        metrics = distributed_meta_step(model, optimizer, tasks, config, ranks, eps=eps)
        state.iteration += 1
        state.wall_time_s += time.perf_counter() - started
        if on_step is not None:
            on_step(state.iteration, metrics)
        if state.iteration % validate_every == 0 or state.iteration == iterations:
            if validate is not None:
                state.validation.append({"iteration": state.iteration, **validate(model)})
                model.train()
            if save is not None:
                save(state)
    return state
