"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", arXiv 2003.01690), L-inf norm, written from the paper.

APGD is PGD without a step size to tune: it starts at ``2 * eps``, adds momentum (0.75), and at
checkpoints (``p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` of the
budget) halves the step of every example whose loss rose in fewer than 75% of the steps since
the last checkpoint, or whose step was not halved and best loss did not improve, restarting it
from its best point. Losses: cross-entropy ("ce"), the Difference of Logits Ratio ("dlr", needs
N >= 3 classes, invariant to logit scale) and its targeted form (:func:`apgd_targeted`, N >= 4).

Conventions as in :mod:`models.attacks.fgsm_pgd`: ``model`` maps ``[B, C, H, W]`` images in
[0, 1] to ``[B, N]`` logits (optionally with explicit ``params``), gradients are taken w.r.t.
the input only, the model runs in eval mode, and the returned images carry no graph. Each example is
attacked on its own (the deployed model's frozen norm makes images independent).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.attacks.fgsm_pgd import (
    Budget,
    attacks_anything,
    eval_mode,
    radius,
    rows_of,
    until_fooled,
)
from models.core import Params, logits_of

Loss = Literal["ce", "dlr"]
MOMENTUM = 0.75  # the paper's alpha
RHO = 0.75  # fraction of steps with a loss increase below which the step size is halved


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example DLR loss ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)``; ``[B]``, N >= 3."""
    ranked, _ = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = ranked[:, 0] == true
    best_other = torch.where(top_is_true, ranked[:, 1], ranked[:, 0])
    return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def dlr_targeted_loss(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Per-example targeted DLR ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``; N >= 4."""
    ranked, _ = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    aimed = logits.gather(1, target[:, None]).squeeze(1)
    return -(true - aimed) / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + 1e-12)


def checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD may halve its step size (the paper's ``w_j``)."""
    fractions = [0.0, 0.22]
    while fractions[-1] < 1:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(f * steps, 6)) for f in fractions if 0 < f < 1})


def _per_example_loss(logits: Tensor, y: Tensor, loss: Loss, target: Tensor | None) -> Tensor:
    if target is not None:
        return dlr_targeted_loss(logits, y, target)
    if loss == "dlr":
        return dlr_loss(logits, y)
    return F.cross_entropy(logits, y, reduction="none")


def _project(x_adv: Tensor, x: Tensor, eps: Tensor) -> Tensor:
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)


def _start_directions(x: Tensor, start: Tensor | None, generator: torch.Generator | None) -> Tensor:
    """``start`` (or uniform draws in [-1, 1]) scaled so that each example's largest entry is 1:
    ``x + eps * direction`` then reaches the budget."""
    if start is None:
        start = 2 * torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) - 1
    elif start.shape != x.shape:
        raise ValueError(f"start {tuple(start.shape)} does not match x {tuple(x.shape)}")
    shape = (-1,) + (1,) * (x.dim() - 1)
    return start / start.flatten(1).abs().amax(1).clamp_min(1e-12).view(shape)


def apgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    steps: int = 100,
    loss: Loss = "ce",
    target: Tensor | None = None,
    params: Params | None = None,
    generator: torch.Generator | None = None,
    start: Tensor | None = None,
) -> Tensor:
    """APGD (untargeted with ``loss``, or targeted DLR towards ``target`` ``[B]``).

    Args:
        model: maps ``[B, C, H, W]`` images to ``[B, N]`` logits.
        x: images ``[B, C, H, W]``, pixels in [0, 1].
        y: true labels ``[B]`` (int64).
        eps: L-inf budget in pixel units, shared or per image ``[B]`` (0 returns a copy of
            ``x``).
        steps: iterations (>= 1); the paper's budget is 100.
        loss: "ce" or "dlr" (ignored when ``target`` is given).
        target: target classes ``[B]`` for the targeted DLR loss, or None.
        params: explicit weights to run ``model`` with; None uses the module's own.
        generator: random source of the start point, for reproducible evaluations.
        start: the start directions ``[B, C, H, W]`` in [-1, 1] (each scaled to reach eps), in
            place of drawing them: every example's result then depends on it alone, however
            examples are batched (the service batches concurrent requests).

    Returns:
        Per example, the first iterate that is misclassified if one was found, else the iterate
        of highest loss; same shape and dtype as ``x``, in [0, 1], ``|x_adv - x| <= eps``.
    """
    if steps < 1:
        raise ValueError("apgd needs steps >= 1")
    x = x.detach()
    if not attacks_anything(eps) or len(x) == 0:
        return x.clone()
    eps = radius(eps, x)
    params = None if params is None else {k: v.detach() for k, v in params.items()}
    start = _start_directions(x, start, generator)
    result = x.clone()
    with eval_mode(model):
        run = _Run(model, params, x, y, target, loss, eps, _project(x + eps * start, x, eps))
        result[run.index[run.fooled]] = run.x_adv[run.fooled]
        run.keep(~run.fooled)
        marks = set(checkpoints(steps))
        for iteration in range(1, steps + 1):
            if len(run.index) == 0:
                break
            run.step(MOMENTUM if iteration > 1 else 1.0)
            result[run.index[run.fooled]] = run.x_adv[run.fooled]
            if iteration in marks:
                run.checkpoint()
            run.keep(~run.fooled)
        result[run.index] = run.x_best
    return result.detach()


class _Run:
    """APGD's per-example state, restricted to the examples not yet misclassified (a fooled
    example's image is final, so it leaves every tensor: the attack costs what survives)."""

    def __init__(self, model, params, x, y, target, loss, eps, x_adv) -> None:
        self.model, self.params, self.loss, self.eps = model, params, loss, eps
        self.index = torch.arange(len(x), device=x.device)
        self.x, self.y, self.target = x, y, target
        self.x_adv = x_adv
        self.grad, self.current, self.fooled = self._evaluate(x_adv)
        self.x_previous = x_adv.clone()
        self.x_best, self.grad_best, self.loss_best = x_adv.clone(), self.grad, self.current
        self.step_size = 2.0 * eps.flatten()
        self.increases = torch.zeros(len(x), device=x.device)
        self.since = 0
        self.reduced_last = torch.ones(len(x), dtype=torch.bool, device=x.device)
        self.best_at_last = self.current

    def _evaluate(self, point: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        point = point.detach().requires_grad_(True)
        logits = logits_of(self.model, self.params, point)
        per_example = _per_example_loss(logits, self.y, self.loss, self.target)
        (grad,) = torch.autograd.grad(per_example.sum(), point)
        return grad, per_example.detach(), logits.detach().argmax(1) != self.y

    def keep(self, rows: Tensor) -> None:
        for name in (
            "index",
            "eps",
            "x",
            "y",
            "x_adv",
            "grad",
            "current",
            "x_previous",
            "x_best",
            "grad_best",
            "loss_best",
            "step_size",
            "increases",
            "reduced_last",
            "best_at_last",
        ):
            setattr(self, name, getattr(self, name)[rows])
        if self.target is not None:
            self.target = self.target[rows]
        self.fooled = self.fooled[rows]

    def step(self, momentum: float) -> None:
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        with torch.no_grad():
            z = _project(
                self.x_adv + self.step_size.view(shape) * self.grad.sign(), self.x, self.eps
            )
            moved = self.x_adv + momentum * (z - self.x_adv)
            moved = moved + (1 - momentum) * (self.x_adv - self.x_previous)
            self.x_previous, self.x_adv = self.x_adv, _project(moved, self.x, self.eps)
        previous = self.current
        self.grad, self.current, self.fooled = self._evaluate(self.x_adv)
        self.increases = self.increases + (self.current > previous).float()
        self.since += 1
        better = self.current > self.loss_best
        self.x_best = torch.where(better.view(shape), self.x_adv, self.x_best)
        self.grad_best = torch.where(better.view(shape), self.grad, self.grad_best)
        self.loss_best = torch.where(better, self.current, self.loss_best)

    def checkpoint(self) -> None:
        """Halve the step of examples that oscillate or stall; restart them from their best."""
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        oscillating = self.increases < RHO * self.since
        stalled = ~self.reduced_last & (self.loss_best <= self.best_at_last)
        halve = oscillating | stalled
        self.step_size = torch.where(halve, self.step_size / 2, self.step_size)
        self.x_adv = torch.where(halve.view(shape), self.x_best, self.x_adv)
        self.grad = torch.where(halve.view(shape), self.grad_best, self.grad)
        self.reduced_last, self.best_at_last = halve, self.loss_best
        self.increases = torch.zeros_like(self.increases)
        self.since = 0


def target_classes(logits: Tensor, y: Tensor, count: int) -> list[Tensor]:
    """The ``count`` highest-scoring wrong classes of each example, best first: ``count`` x [B]."""
    masked = logits.scatter(1, y[:, None], float("-inf"))
    order = masked.argsort(dim=1, descending=True)
    return [order[:, rank] for rank in range(min(count, logits.shape[1] - 1))]


def apgd_targeted(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    steps: int = 100,
    targets: int = 9,
    params: Params | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """APGD-T: targeted DLR towards each of the ``targets`` most likely wrong classes (by the
    clean logits) in turn, each run only on examples no earlier target fooled. N >= 4 classes.

    Shapes, ranges and the return value as :func:`apgd`.
    """
    x = x.detach()
    with torch.no_grad(), eval_mode(model):
        clean_logits = logits_of(model, params, x)
    if clean_logits.shape[1] < 4:
        raise ValueError("targeted DLR needs at least 4 classes")
    attempts = (
        lambda todo, target=target: apgd(
            model,
            x[todo],
            y[todo],
            eps=rows_of(eps, todo),
            steps=steps,
            target=target[todo],
            params=params,
            generator=generator,
        )
        for target in target_classes(clean_logits, y, targets)
    )
    return until_fooled(model, params, x, y, attempts, eps=eps)
