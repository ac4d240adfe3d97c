"""The service's jobs as typed settings: built by the API (app/), read by the worker (worker/),
stored as JSON on the job record. The attacks of reports, evaluations and robustness flags,
and the bounds of adaptation settings, are defined here once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from models.attacks import LEGACY_ATTACKS, STRONG_SUITE, parse_attack, parse_attacks
from models.core import DEFAULT_EPS_GRID, AdaptConfig, ConfigError

# Reports and evaluations: the legacy attacks (cheap, for the sanity checks), then the strong
# suite, the black-box check before PGD with restarts (the costliest, least often decisive).
REPORT_ATTACKS = LEGACY_ATTACKS + tuple(sorted(STRONG_SUITE, key=lambda a: a.startswith("pgd")))
REPORT_TIME_BUDGET_S = 120.0  # seconds of attacks per job; the attacks left are skipped, named
REPORT_EPS_GRID = DEFAULT_EPS_GRID  # the eps values a report and an evaluation cover


def report_suite(names: str) -> tuple[str, ...]:
    """The report attacks an operator names (comma-separated; blank: ``REPORT_ATTACKS``),
    checked: a ConfigError names the bad one."""
    if not names.strip():
        return REPORT_ATTACKS
    return tuple(attack.name for attack in parse_attacks(names))


# The prediction robustness flag: its gap to the full suite is measured in docs/robustness.md.
PREDICT_ATTACK = parse_attack("apgd-ce-20")
# How much robustness report an adaptation asks for: the operator's suite, the prediction
# flag's attack (with FGSM for the sanity checks), or none (the model is published sooner)
REPORT_LEVELS = ("full", "quick", "none")
QUICK_REPORT_ATTACKS = ("fgsm", PREDICT_ATTACK.name)
ADAPT_LR_BOUNDS = (1e-6, 1.0)  # the adaptation learning rates the API accepts
MAX_AUGMENT = 16  # affine copies per support image the API accepts (each step computes them all)


def default_augment_and_steps(
    shots_per_class: list[int],
    one_shot: tuple[int, int] | None,
    max_images_per_step: int,
    max_steps: int,
) -> tuple[int, int]:
    """The ``(augment, steps)`` of a job that asks for no adaptation setting: ``one_shot``
    (the recipe measured for its base model at one image per class; None: none was) when every
    class has one image and the API's bounds let it run whole; AdaptConfig's otherwise (held
    within ``max_steps``), never a mix of the two that nobody measured."""
    if one_shot is not None and shots_per_class and max(shots_per_class) == 1:
        augment, steps = one_shot
        if (1 + augment) * len(shots_per_class) <= max_images_per_step and steps <= max_steps:
            return augment, steps
    return AdaptConfig.augment, min(AdaptConfig.steps, max_steps)


@dataclass(frozen=True)
class EvaluateJob:
    """Accuracy of an adapted model under attack, on labelled images."""

    eps_grid: tuple[float, ...] = REPORT_EPS_GRID  # attack budgets (L-inf, pixels in [0, 1])
    attacks: tuple[str, ...] = REPORT_ATTACKS  # run in this order (models.attacks.suite names)
    time_budget_s: float = REPORT_TIME_BUDGET_S  # attacks after this many seconds are skipped

    def __post_init__(self) -> None:
        if not self.eps_grid or any(not 0.0 <= eps <= 1.0 for eps in self.eps_grid):
            raise ConfigError(f"eps_grid must be values in [0, 1], got {self.eps_grid}")
        parse_attacks(self.attacks)
        if not 0 < self.time_budget_s <= 3600:
            raise ConfigError(f"time_budget_s must be in (0, 3600], got {self.time_budget_s}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def _common(fields: dict) -> tuple:
        # jobs queued by a version before the attack suite carry pgd_steps instead of attacks
        legacy = ("fgsm", f"pgd-{int(fields.get('pgd_steps', 20))}")
        return (
            tuple(fields["eps_grid"]),
            tuple(fields.get("attacks", legacy)),
            float(fields.get("time_budget_s", REPORT_TIME_BUDGET_S)),
        )

    @classmethod
    def from_json(cls, text: str) -> EvaluateJob:
        return cls(*cls._common(json.loads(text)))


@dataclass(frozen=True)
class AdaptJob(EvaluateJob):
    """Adapt a base model to a support set (clean + FGSM copies), then report on it."""

    steps: int = AdaptConfig.steps  # gradient steps on the support set
    lr: float = AdaptConfig.lr  # SGD learning rate, within ADAPT_LR_BOUNDS
    eps: float = AdaptConfig.eps  # FGSM budget of the adversarial copies
    adversarial: bool = True  # serve the clean + FGSM adaptation; False: a clean-only fine-tune
    report: str = "full"  # one of REPORT_LEVELS; "none" publishes an unavailable report
    augment: int = AdaptConfig.augment  # random affine copies of each support image per step

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.augment <= MAX_AUGMENT:
            raise ConfigError(f"augment must be in 0..{MAX_AUGMENT}, got {self.augment}")
        if not ADAPT_LR_BOUNDS[0] <= self.lr <= ADAPT_LR_BOUNDS[1]:
            raise ConfigError(f"lr must be in {list(ADAPT_LR_BOUNDS)}, got {self.lr}")
        if self.report not in REPORT_LEVELS:
            raise ConfigError(f"report must be one of {', '.join(REPORT_LEVELS)}")
        self.adapt_config  # noqa: B018 - AdaptConfig checks steps and eps

    @property
    def adapt_config(self) -> AdaptConfig:
        return AdaptConfig(
            steps=self.steps,
            lr=self.lr,
            eps=self.eps,
            adversarial=self.adversarial,
            augment=self.augment,
        )

    @classmethod
    def from_json(cls, text: str) -> AdaptJob:
        fields = json.loads(text)
        return cls(
            *cls._common(fields),
            int(fields["steps"]),
            float(fields["lr"]),
            float(fields["eps"]),
            bool(fields.get("adversarial", True)),  # jobs queued before the choice existed
            str(fields.get("report", "full")),
            int(fields.get("augment", 0)),  # jobs queued before augmented adaptation
        )
