"""L-inf attacks (FGSM, PGD, APGD, Square) and the named attack suite with its worst case."""

from models.attacks.autopgd import apgd, apgd_targeted, checkpoints, dlr_loss, target_classes
from models.attacks.fgsm_pgd import fgsm, fgsm_rs, pgd, pgd_restarts, radius
from models.attacks.square_attack import square, window_fraction
from models.attacks.suite import (
    LEGACY_ATTACKS,
    MAX_TARGETS,
    STRONG_SUITE,
    Attack,
    correct,
    parse_attack,
    parse_attacks,
    runnable,
    suite_correctness,
)

__all__ = [
    "LEGACY_ATTACKS",
    "MAX_TARGETS",
    "STRONG_SUITE",
    "Attack",
    "apgd",
    "apgd_targeted",
    "checkpoints",
    "correct",
    "dlr_loss",
    "fgsm",
    "fgsm_rs",
    "parse_attack",
    "parse_attacks",
    "pgd",
    "pgd_restarts",
    "radius",
    "runnable",
    "square",
    "suite_correctness",
    "target_classes",
    "window_fraction",
]
