"""The attack suite: L-inf attacks named with their budget, run on one batch, worst case.

Names (the number is the attack's budget, so a result says what it measured):

* ``fgsm``: FGSM (Goodfellow et al. 2015), one step of size eps.
* ``pgd-S`` / ``pgd-SxR``: PGD (Madry et al. 2018), S steps of ``2.5 * eps / S`` from a random
  start, R random restarts (default 1).
* ``apgd-ce-S``, ``apgd-dlr-S``: APGD with the CE or DLR loss (Croce & Hein 2020), S steps;
  DLR needs N >= 3 classes.
* ``apgd-t-S``: APGD with the targeted DLR loss towards each of up to 9 wrong classes; N >= 4
  (:func:`runnable` puts ``apgd-dlr-S`` in its place on 3 classes).
* ``square-Q``: the Square Attack (Andriushchenko et al. 2020), black-box, Q queries.

An example counts toward an attack only if the model classifies it correctly clean; the
``worst`` case counts it correct only if it survives every attack run, ``white-box`` only if it
survives every white-box one (the reference the black-box gradient-masking check compares to).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from models.attacks.autopgd import apgd, apgd_targeted
from models.attacks.fgsm_pgd import Budget, attacks_anything, eval_mode, fgsm, pgd_restarts, rows_of
from models.attacks.square_attack import square
from models.core import ConfigError, FewShotNet

# The strong suite: what reports, evaluations and headline figures use (AutoAttack's recipe,
# plus PGD with restarts, on this project's budget).
STRONG_SUITE = ("apgd-ce-100", "apgd-t-100", "pgd-100x5", "square-1000")
LEGACY_ATTACKS = ("fgsm", "pgd-20")  # the attacks of reports before the strong suite
MAX_TARGETS = 9  # APGD-T's wrong classes tried, as in AutoAttack
_PATTERN = re.compile(r"^(fgsm)$|^(pgd)-(\d+)(?:x(\d+))?$|^(apgd-ce|apgd-dlr|apgd-t|square)-(\d+)$")


@dataclass(frozen=True)
class Attack:
    name: str  # the canonical name, e.g. "pgd-100x5"
    kind: str  # fgsm, pgd, apgd-ce, apgd-dlr, apgd-t or square
    budget: int  # steps (queries for square; 1 for fgsm)
    restarts: int = 1  # random restarts (pgd only)

    @property
    def white_box(self) -> bool:
        return self.kind != "square"

    @property
    def min_classes(self) -> int:
        return {"apgd-dlr": 3, "apgd-t": 4}.get(self.kind, 2)

    @property
    def takes_start(self) -> bool:
        """Whether a call may give the start directions (APGD): see :func:`apgd`."""
        return self.kind in ("apgd-ce", "apgd-dlr")

    def runs_on(self, n_way: int) -> bool:
        return n_way >= self.min_classes

    def __call__(
        self,
        model: FewShotNet,
        x: Tensor,
        y: Tensor,
        *,
        eps: Budget,
        generator: torch.Generator,
        start: Tensor | None = None,
    ) -> Tensor:
        """Adversarial images for ``x`` ``[B, C, H, W]`` in [0, 1] with labels ``y`` ``[B]``
        within ``eps`` (shared, or per image ``[B]``); ``start``: the start directions of an
        APGD (see :func:`apgd`), none for the others."""
        if start is not None and not self.takes_start:
            raise ValueError(f"{self.name} takes no start directions")
        if self.kind == "fgsm":
            return fgsm(model, x, y, eps=eps)
        if self.kind == "pgd":
            return pgd_restarts(
                model, x, y, eps=eps, steps=self.budget, restarts=self.restarts, generator=generator
            )
        if self.kind == "apgd-t":
            return apgd_targeted(
                model, x, y, eps=eps, steps=self.budget, targets=MAX_TARGETS, generator=generator
            )
        if self.kind == "square":
            return square(model, x, y, eps=eps, queries=self.budget, generator=generator)
        loss = "ce" if self.kind == "apgd-ce" else "dlr"
        return apgd(
            model, x, y, eps=eps, steps=self.budget, loss=loss, generator=generator, start=start
        )


def parse_attack(name: str) -> Attack:
    """The :class:`Attack` a name stands for; ConfigError naming the valid forms otherwise."""
    match = _PATTERN.match(name.strip().lower())
    if match is None:
        raise ConfigError(
            f"unknown attack {name!r}: use fgsm, pgd-STEPS[xRESTARTS], apgd-ce-STEPS, "
            "apgd-dlr-STEPS, apgd-t-STEPS or square-QUERIES"
        )
    fgsm_kind, pgd_kind, steps, restarts, other_kind, budget = match.groups()
    if fgsm_kind:
        return Attack("fgsm", "fgsm", 1)
    if pgd_kind:
        runs = int(restarts or 1)
        attack = Attack(
            f"pgd-{int(steps)}" + (f"x{runs}" if runs > 1 else ""), "pgd", int(steps), runs
        )
    else:
        attack = Attack(f"{other_kind}-{int(budget)}", other_kind, int(budget))
    if not 1 <= attack.budget <= 10_000 or not 1 <= attack.restarts <= 100:
        raise ConfigError(f"{name!r}: steps/queries must be in 1..10000 and restarts in 1..100")
    return attack


def parse_attacks(names: str | Sequence[str | Attack]) -> tuple[Attack, ...]:
    """Attacks from a comma-separated string or a sequence of names (or attacks), duplicates
    dropped, order kept."""
    items = names.split(",") if isinstance(names, str) else list(names)
    attacks = tuple(
        dict.fromkeys(
            item if isinstance(item, Attack) else parse_attack(item)
            for item in items
            if isinstance(item, Attack) or item.strip()
        )
    )
    if not attacks:
        raise ConfigError("name at least one attack")
    return attacks


def runnable(attacks: Sequence[Attack], n_way: int) -> tuple[list[Attack], dict[str, str]]:
    """The attacks that can run on an ``n_way`` model, and why each other one cannot. An
    APGD-T that cannot run on a 3-way model gives its place to the untargeted APGD-DLR of the
    same budget, so the suite keeps a DLR-loss attack wherever one is defined."""
    kept: list[Attack] = []
    skipped: dict[str, str] = {}
    for attack in attacks:
        if attack.runs_on(n_way):
            kept.append(attack)
            continue
        skipped[attack.name] = f"needs at least {attack.min_classes} classes, the model has {n_way}"
        stand_in = parse_attack(f"apgd-dlr-{attack.budget}")
        if attack.kind == "apgd-t" and stand_in.runs_on(n_way):
            skipped[attack.name] += f"; {stand_in.name} runs in its place"
            kept.append(stand_in)
    return list(dict.fromkeys(kept)), skipped


@torch.no_grad()
def correct(model: FewShotNet, x: Tensor, y: Tensor) -> Tensor:
    with eval_mode(model):
        return model(x).argmax(1) == y


def suite_correctness(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    *,
    attacks: Sequence[Attack],
    eps: Budget,
    generator: torch.Generator,
    clean: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-example correctness (bool ``[B]``) under each attack at ``eps`` (shared, or per
    example ``[B]``), plus ``worst`` and ``white-box``. Attacks run only on the examples the
    model gets right clean."""
    clean = correct(model, x, y) if clean is None else clean
    todo = clean.nonzero().flatten()
    results: dict[str, Tensor] = {}
    for attack in attacks:
        outcome = clean.clone()
        if attacks_anything(eps) and len(todo) > 0:
            x_adv = attack(model, x[todo], y[todo], eps=rows_of(eps, todo), generator=generator)
            outcome[todo] = correct(model, x_adv, y[todo])
        results[attack.name] = outcome
    worst, white = clean.clone(), clean.clone()
    for attack in attacks:
        worst &= results[attack.name]
        if attack.white_box:
            white &= results[attack.name]
    return {**results, "worst": worst, "white-box": white}
