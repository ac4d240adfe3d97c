"""One meta-training run, assembled once for every caller: ``fewshot meta-train`` (checkpoints
on disk, torchrun ranks) and a tenant's base-model job (snapshots in the job store) alike.

A run is the network (seeded: the same seed gives the same initialization), its meta-optimizer,
its progress (:class:`TrainState`) and the training episodes. Where its weights come from and
where its progress goes (checkpoint, card, snapshot) stays with the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.core import (
    BackboneConfig,
    FewShotNet,
    MetaConfig,
    Params,
    backbone_params,
    load_weights,
)
from models.data import ClassImages, EpisodeSampler
from models.meta.training import (
    ProgressCallback,
    Ranks,
    SaveCallback,
    TrainState,
    ValidateCallback,
    make_optimizer,
    meta_train,
    optimizer_tensors,
    restore_optimizer,
)


def episodes_for(
    classes: list[ClassImages], meta: MetaConfig, *, seed: int, split_name: str
) -> EpisodeSampler:
    """Episodes of the run's shape (``meta``'s way, shot and query) over ``classes``."""
    return EpisodeSampler(
        classes, way=meta.way, shot=meta.shot, query=meta.query, seed=seed, split_name=split_name
    )


class MetaTrainRun:
    """The network, meta-optimizer and progress of one run over ``sampler``'s episodes."""

    def __init__(
        self,
        backbone: BackboneConfig,
        meta: MetaConfig,
        sampler: EpisodeSampler,
        *,
        seed: int,
        device: torch.device,
    ):
        self.meta, self.sampler, self.device = meta, sampler, device
        torch.manual_seed(seed)
        self.model = FewShotNet(backbone, n_way=meta.way).to(device)
        self.optimizer = make_optimizer(self.model, meta)
        self.state = TrainState()

    def backbone_params(self) -> Params:
        """The meta-learned weights (everything but the head)."""
        return backbone_params(self.model)

    def optimizer_tensors(self) -> dict[str, Tensor]:
        return optimizer_tensors(self.optimizer)

    def load_backbone(self, weights: dict[str, Tensor]) -> None:
        """Start from ``weights`` (a warm start); they must fit the run's backbone."""
        load_weights(self.model, weights)

    def restore(
        self, weights: dict[str, Tensor], optimizer_state: dict[str, Tensor], state: TrainState
    ) -> None:
        """Continue a run from its saved weights, optimizer state and progress."""
        self.load_backbone(weights)
        restore_optimizer(self.optimizer, optimizer_state)
        self.state = state

    def train(
        self,
        iterations: int,
        *,
        validate_every: int,
        validate: ValidateCallback | None = None,
        save: SaveCallback | None = None,
        on_step: ProgressCallback | None = None,
        ranks: Ranks = Ranks(),
    ) -> TrainState:
        """Meta-steps up to ``iterations`` (see :func:`models.meta.training.meta_train`)."""
        return meta_train(
            self.model,
            self.optimizer,
            self.sampler,
            self.meta,
            self.state,
            iterations=iterations,
            validate_every=validate_every,
            validate=validate,
            save=save,
            on_step=on_step,
            device=self.device,
            ranks=ranks,
        )
