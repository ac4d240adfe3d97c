"""Frozen configuration dataclasses of the ML core.

Every default carries a comment saying why it is what it is. Configs travel inside checkpoint
cards as plain dicts (``dataclasses.asdict``) and come back through ``from_dict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Self

Algorithm = Literal["adml", "maml", "aq"]
HeadInit = Literal["proto", "zero"]
TrainAttack = Literal["fgsm", "fgsm-rs", "pgd"]

# the threat model's L-inf budgets (pixels in [0, 1]) that evaluations and reports cover
DEFAULT_EPS_GRID = (0.0, 0.05, 0.1, 0.2)


class ConfigError(ValueError):
    """A configuration value is out of its valid range."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


class _FromDict:
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build from a dict, refusing unknown keys (a card from another version says so)."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        _require(not unknown, f"unknown {cls.__name__} keys: {unknown}")
        return cls(**values)


@dataclass(frozen=True)
class BackboneConfig(_FromDict):
    """Conv-4 of MAML: ``blocks`` x [conv3x3 ``width``, BatchNorm, ReLU, maxpool2]."""

    in_channels: int = 1  # Omniglot is grayscale; 3 for RGB folder datasets
    image_size: int = 28  # MAML's Omniglot resolution; 4 pools take 28 -> 1
    width: int = 64  # channels per block, as in MAML / Prototypical Networks
    blocks: int = 4  # the standard Conv-4 depth

    def __post_init__(self) -> None:
        _require(self.in_channels in (1, 3), "in_channels must be 1 or 3")
        _require(1 <= self.blocks <= 6, "blocks must be in 1..6")
        _require(self.width >= 1, "width must be positive")
        _require(
            self.image_size >= 2**self.blocks,
            f"image_size must be >= {2**self.blocks} for {self.blocks} pooling blocks",
        )

    @property
    def feature_size(self) -> int:
        """Length of the flattened feature vector the head sees."""
        side = self.image_size
        for _ in range(self.blocks):
            side //= 2
        return self.width * side * side


@dataclass(frozen=True)
class MetaConfig(_FromDict):
    """One meta-step of ADML or MAML (Yin et al. 2018; Finn et al. 2017)."""

    algo: Algorithm = "adml"  # the product; "maml": baseline; "aq": adversarial querying
    way: int = 5  # classes per task; the head adapts to any N at service time anyway
    shot: int = 1  # support images per class
    query: int = 5  # query images per class; ~90% of a task's cost, so kept small
    inner_steps: int = 1  # SGD steps of the inner loop (MAML Omniglot: 1 at train time)
    inner_lr: float = 0.4  # MAML's Omniglot inner learning rate
    meta_batch: int = 4  # tasks per meta-step (MAML Omniglot 5-way: 32; we are CPU-bound)
    meta_lr: float = 1e-3  # Adam learning rate of the outer loop, as in MAML
    eps: float = 0.1  # L-inf FGSM budget for the adversarial copies, pixels in [0, 1]
    attack: TrainAttack = "fgsm"  # ADML's FGSM; "fgsm-rs": random start (Wong 2020); "pgd"
    attack_steps: int = 3  # steps of the "pgd" training attack (step 2.5 * eps / steps)
    eps_ramp: int = 0  # meta-steps over which eps rises linearly from 0 (0: full eps at once)
    trades: float = 0.0  # > 0: theta_c's adversarial CE becomes CE(Q) + trades * KL (TRADES)
    first_order: bool = False  # True drops second-order terms (FOMAML-style); default exact
    head_init: HeadInit = "proto"  # per-task head from support prototypes; works for any N-way

    def __post_init__(self) -> None:
        _require(self.algo in ("adml", "maml", "aq"), "algo must be 'adml', 'maml' or 'aq'")
        _require(self.attack in ("fgsm", "fgsm-rs", "pgd"), "attack: fgsm, fgsm-rs or pgd")
        _require(1 <= self.attack_steps <= 100, "attack_steps must be in 1..100")
        _require(self.eps_ramp >= 0, "eps_ramp must be >= 0")
        _require(0.0 <= self.trades <= 100.0, "trades must be in [0, 100]")
        _require(self.way >= 2, "way must be >= 2")
        _require(self.shot >= 1 and self.query >= 1, "shot and query must be >= 1")
        _require(self.inner_steps >= 1, "inner_steps must be >= 1")
        _require(self.inner_lr > 0 and self.meta_lr > 0, "learning rates must be positive")
        _require(self.meta_batch >= 1, "meta_batch must be >= 1")
        _require(0.0 <= self.eps <= 1.0, "eps must be in [0, 1]")
        _require(self.head_init in ("proto", "zero"), "head_init must be 'proto' or 'zero'")

    def eps_at(self, iteration: int) -> float:
        """The training eps of meta-step ``iteration`` (0-based) under the linear ramp."""
        if self.eps_ramp == 0:
            return self.eps
        return self.eps * min(1.0, (iteration + 1) / self.eps_ramp)


@dataclass(frozen=True)
class AdaptConfig(_FromDict):
    """Service-time adaptation of an initialization to one support set."""

    steps: int = 20  # gradient steps on the support set; cheap: the support set is tiny
    lr: float = 0.1  # SGD learning rate; below the meta-training inner lr for many steps
    eps: float = 0.1  # FGSM budget of the adversarial copies (0 or adversarial=False: clean)
    adversarial: bool = True  # clean + FGSM copies regenerated each step; False: clean only
    random_start: bool = False  # FGSM copies from a random point of the eps-ball (Wong 2020)
    augment: int = 0  # random affine copies of each support image per step (models.data.augment)

    def __post_init__(self) -> None:
        _require(0 <= self.steps <= 1000, "steps must be in 0..1000")
        _require(0 <= self.augment <= 64, "augment must be in 0..64")
        _require(0 < self.lr <= 10, "lr must be in (0, 10]")
        _require(0.0 <= self.eps <= 1.0, "eps must be in [0, 1]")

    def protocol(self) -> dict[str, Any]:
        """The fields as journal headers record them: a field added after journals began is
        left out at its no-op default, so a journal from before it still resumes."""
        fields = dataclasses.asdict(self)
        if self.augment == 0:
            del fields["augment"]
        return fields
