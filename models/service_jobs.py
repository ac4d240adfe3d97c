"""The service's jobs as typed settings: built by the API (app/), read by the worker (worker/),
stored as JSON on the job record. The attack budget of reports, evaluations and robustness
flags, and the bounds of adaptation settings, are defined here once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from models.config import AdaptConfig, ConfigError
from models.evaluation import DEFAULT_EPS_GRID

REPORT_PGD_STEPS = 20  # PGD iterations of reports, evaluations and prediction robustness flags
REPORT_EPS_GRID = DEFAULT_EPS_GRID  # the eps values a report and an evaluation cover
ADAPT_LR_BOUNDS = (1e-6, 1.0)  # the adaptation learning rates the API accepts


@dataclass(frozen=True)
class EvaluateJob:
    """Accuracy of an adapted model under attack, on labelled images."""

    eps_grid: tuple[float, ...] = REPORT_EPS_GRID  # attack budgets (L-inf, pixels in [0, 1])
    pgd_steps: int = REPORT_PGD_STEPS  # iterations of the PGD attack

    def __post_init__(self) -> None:
        if not self.eps_grid or any(not 0.0 <= eps <= 1.0 for eps in self.eps_grid):
            raise ConfigError(f"eps_grid must be values in [0, 1], got {self.eps_grid}")
        if not 1 <= self.pgd_steps <= 1000:
            raise ConfigError(f"pgd_steps must be in 1..1000, got {self.pgd_steps}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EvaluateJob:
        fields = json.loads(text)
        return cls(tuple(fields["eps_grid"]), int(fields["pgd_steps"]))


@dataclass(frozen=True)
class AdaptJob(EvaluateJob):
    """Adapt a base model to a support set (clean + FGSM copies), then report on it."""

    steps: int = AdaptConfig.steps  # gradient steps on the support set
    lr: float = AdaptConfig.lr  # SGD learning rate, within ADAPT_LR_BOUNDS
    eps: float = AdaptConfig.eps  # FGSM budget of the adversarial copies

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ADAPT_LR_BOUNDS[0] <= self.lr <= ADAPT_LR_BOUNDS[1]:
            raise ConfigError(f"lr must be in {list(ADAPT_LR_BOUNDS)}, got {self.lr}")
        self.adapt_config  # noqa: B018 - AdaptConfig checks steps and eps

    @property
    def adapt_config(self) -> AdaptConfig:
        return AdaptConfig(steps=self.steps, lr=self.lr, eps=self.eps)

    @classmethod
    def from_json(cls, text: str) -> AdaptJob:
        fields = json.loads(text)
        return cls(
            tuple(fields["eps_grid"]),
            int(fields["pgd_steps"]),
            int(fields["steps"]),
            float(fields["lr"]),
            float(fields["eps"]),
        )
