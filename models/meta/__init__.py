"""Meta-learning (ADML / MAML meta-steps), the meta-training loop, service-time adaptation."""

from models.meta.adaptation import adapt, adapt_and_deploy
from models.meta.adml import StepMetrics, accumulate_meta_gradient, inner_adapt, task_loss
from models.meta.training import (
    Ranks,
    TrainState,
    distributed_meta_step,
    make_optimizer,
    meta_train,
    optimizer_tensors,
    restore_optimizer,
)

__all__ = [
    "Ranks",
    "StepMetrics",
    "TrainState",
    "accumulate_meta_gradient",
    "adapt",
    "adapt_and_deploy",
    "distributed_meta_step",
    "inner_adapt",
    "make_optimizer",
    "meta_train",
    "optimizer_tensors",
    "restore_optimizer",
    "task_loss",
]
