"""Meta-learning (ADML / MAML meta-steps), the meta-training loop and the run that holds it,
service-time adaptation."""

from models.meta.adaptation import adapt, adapt_and_deploy
from models.meta.adml import StepMetrics, accumulate_meta_gradient, inner_adapt, task_loss
from models.meta.run import MetaTrainRun, episodes_for
from models.meta.training import (
    ProgressCallback,
    Ranks,
    SaveCallback,
    TrainState,
    ValidateCallback,
    distributed_meta_step,
    make_optimizer,
    meta_train,
    optimizer_tensors,
    restore_optimizer,
)

__all__ = [
    "MetaTrainRun",
    "ProgressCallback",
    "Ranks",
    "SaveCallback",
    "StepMetrics",
    "TrainState",
    "ValidateCallback",
    "accumulate_meta_gradient",
    "adapt",
    "adapt_and_deploy",
    "distributed_meta_step",
    "episodes_for",
    "inner_adapt",
    "make_optimizer",
    "meta_train",
    "optimizer_tensors",
    "restore_optimizer",
    "task_loss",
]
