"""Support-set poisoning: perturbed support images that make the service's adapted model fail.

Threat model. The attacker controls some of the support images a user sends (``poisoned``:
one per class, a single one, or all), may change each of them by at most ``eps`` per pixel
(L-inf norm, pixels in [0, 1]), the others stay clean. The attacker knows the base model and
the service's adaptation (steps, learning rate, eps of the FGSM copies, affine copies), but not
the images the victim will classify: it optimises against its own images of the same classes
(the *surrogate* set; the evaluation draws them from the same characters, disjoint from the
victim's queries). Evaluating with the victim's queries as the surrogate set (the *oracle*)
bounds the damage from above; the two are labelled apart wherever figures are shown.

Attack. PGD with sign steps on the poisoned images, ascending the cross-entropy of the
*deployed* adapted model (BatchNorm statistics of the poisoned support set, as
:func:`models.core.deployable` freezes them) on the surrogate set. The gradient runs through
the unrolled adaptation (:mod:`models.evaluation.unrolled`: every SGD step, second order, the
prototype head initialisation, the clean + FGSM copies), exactly as the service computes it.
When the adaptation uses random affine copies (or FGSM-RS), the attacker's unrolled adaptation
draws them from its own seed, the same draws at every iterate (a fixed sample: its objective is
deterministic, so keeping the best iterate means something); the victim draws its own.
The iterate kept is the one of lowest surrogate accuracy (ties: highest loss), the clean
support set (iterate 0) included, so the attack never does worse than no attack on its own
objective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from models.core import AdaptConfig, BackboneConfig, ConfigError, HeadInit, Params
from models.evaluation.unrolled import deployed_logits, unrolled_adapt

POISON_MODES = ("all", "one-per-class", "single")
# support images -> (attacker's loss, per-image correctness on the surrogate set)
Objective = Callable[[Tensor, bool], tuple[Tensor, Tensor]]


def poison_mask(y_support: Tensor, mode: str) -> Tensor:
    """Which support images the attacker controls (bool ``[B]``): ``all``; ``one-per-class``
    (the first image of each class); ``single`` (the first image of the support set)."""
    mask = torch.zeros(len(y_support), dtype=torch.bool, device=y_support.device)
    if mode == "all":
        mask[:] = True
    elif mode == "one-per-class":
        for label in y_support.unique():
            mask[int((y_support == label).nonzero()[0])] = True
    elif mode == "single":
        mask[0] = True
    else:
        raise ConfigError(f"poison mode must be one of {', '.join(POISON_MODES)}, got {mode!r}")
    return mask


@dataclass(frozen=True)
class PoisonResult:
    x: Tensor  # the poisoned support set [B, C, S, S] in [0, 1], no graph
    history: list[tuple[float, float]] = field(default_factory=list)  # (accuracy, loss) per
    best: int = 0  # iterate; the index of the one returned (0: the starting support set)

    @property
    def attacker_accuracy(self) -> float | None:
        """Surrogate accuracy of the returned support set (None when no attack ran)."""
        return self.history[self.best][0] if self.history else None


def adaptation_objective(
    config: BackboneConfig,
    backbone: Params,
    y_support: Tensor,
    x_target: Tensor,
    y_target: Tensor,
    *,
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit,
    seed: int = 0,
) -> Objective:
    """The attacker's objective as a function of the support images: the cross-entropy of the
    deployed adapted model on ``x_target`` (mean over images) and its per-image correctness.
    ``create_graph`` (second argument) keeps the graph of the unrolled adaptation."""

    def objective(x_support: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        generator = torch.Generator(device=x_support.device).manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # FGSM-RS draws on the CPU's global generator
            torch.manual_seed(seed)
            params = unrolled_adapt(
                config,
                backbone,
                x_support,
                y_support,
                n_way=n_way,
                adapt_config=adapt_config,
                head_init=head_init,
                generator=generator,
                create_graph=create_graph,
            )
        logits = deployed_logits(config, params, x_support, x_target)
        return F.cross_entropy(logits, y_target), logits.detach().argmax(1) == y_target

    return objective


def poison_support(
    objective: Objective,
    x_support: Tensor,
    poisoned: Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> PoisonResult:
    """PGD (L-inf, sign steps of ``step_size``, default ``2.5 * eps / steps``) on the images
    ``poisoned`` (bool ``[B]``) of ``x_support`` (``[B, C, S, S]`` in [0, 1]), ascending
    ``objective`` (:func:`adaptation_objective`); the best iterate, within ``eps`` of
    ``x_support`` and in [0, 1], the other images unchanged. ``eps`` 0, no step or no poisoned
    image returns a copy of ``x_support`` without running the objective."""
    if eps < 0 or steps < 0:
        raise ConfigError(f"poisoning needs eps >= 0 and steps >= 0, got {eps} and {steps}")
    clean = x_support.detach()
    if eps == 0 or steps == 0 or not bool(poisoned.any()):
        return PoisonResult(clean.clone())
    radius = eps * poisoned.to(clean.dtype).view(-1, *([1] * (clean.dim() - 1)))
    step = 2.5 * eps / steps if step_size is None else step_size
    x = clean.clone()
    if random_start:
        noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype)
        x = (clean + (2 * noise.to(clean.device) - 1) * radius).clamp(0.0, 1.0)
    history: list[tuple[float, float]] = []
    best, best_x = 0, x.clone()
    for iterate in range(steps + 1):
        last = iterate == steps
        probe = x.clone().requires_grad_(not last)
        loss, correct = objective(probe, not last)
        history.append((correct.double().mean().item(), loss.item()))
        if _better(history[iterate], history[best]):
            best, best_x = iterate, x.clone()
        if last:
            break
        (grad,) = torch.autograd.grad(loss, probe)
        x = x + step * grad.sign() * (radius > 0)
        x = torch.min(torch.max(x, clean - radius), clean + radius).clamp(0.0, 1.0)
    return PoisonResult(best_x, history, best)


def _better(candidate: tuple[float, float], incumbent: tuple[float, float]) -> bool:
    accuracy, loss = candidate
    return accuracy < incumbent[0] or (accuracy == incumbent[0] and loss > incumbent[1])


def random_poison(
    x_support: Tensor, poisoned: Tensor, *, eps: float, generator: torch.Generator
) -> Tensor:
    """The control of the same budget: every pixel of the ``poisoned`` images moved by ``+eps``
    or ``-eps`` at random (a corner of the L-inf ball, the largest random change it allows),
    clipped to [0, 1]; the other images unchanged."""
    signs = torch.randint(0, 2, x_support.shape, generator=generator).to(x_support) * 2 - 1
    mask = poisoned.to(x_support.dtype).view(-1, *([1] * (x_support.dim() - 1)))
    return (x_support.detach() + eps * signs * mask).clamp(0.0, 1.0)
