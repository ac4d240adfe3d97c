"""Square Attack (Andriushchenko et al. 2020, arXiv 1912.00049), L-inf norm, score-based.

A black-box attack: it reads only the model's logits, never a gradient, so it is the alarm for
gradient masking. If it leaves fewer images standing than the white-box attacks, the gradients
the white-box attacks follow are misleading and their figures cannot be trusted.

From vertical stripes of +-eps, each query changes one random square window (side shrinking
with the schedule of the paper, ``p_init = 0.8``) of every still-unbroken image to fresh +-eps
values per channel, and keeps the change when the margin ``z_y - max_{i != y} z_i`` falls.
Conventions as in :mod:`models.attacks.fgsm_pgd`: ``[B, C, H, W]`` images in [0, 1], ``[B]`` labels,
eval mode, no graph on the result.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.attacks.fgsm_pgd import Budget, attacks_anything, eval_mode, radius
from models.core import Params, logits_of

P_INIT = 0.8  # the paper's initial fraction of pixels changed per query (L-inf)
# (query fraction of a 10,000-query budget after which p halves again), from the paper
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_fraction(query: int, queries: int) -> float:
    """Fraction of the image a query's square covers: ``P_INIT`` halved on the schedule."""
    scaled = int(query / queries * 10_000)
    return P_INIT / 2 ** sum(scaled > mark for mark in HALVINGS)


def _margin(logits: Tensor, y: Tensor) -> Tensor:
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return true - others.amax(1)


def _signs(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    bits = torch.randint(0, 2, shape, generator=generator)
    return (2 * bits - 1).to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def square(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: Budget,
    queries: int = 1000,
    params: Params | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Square Attack with ``queries`` model evaluations per image (plus one for the start).

    Args:
        model: maps ``[B, C, H, W]`` images to ``[B, N]`` logits; only its outputs are read.
        x: images ``[B, C, H, W]``, pixels in [0, 1].
        y: labels ``[B]`` (int64).
        eps: L-inf budget in pixel units, shared or per image ``[B]`` (0 returns a copy of
            ``x``).
        queries: query budget per image (>= 1); stops early for images already misclassified.
        params: explicit weights to run ``model`` with; None uses the module's own.
        generator: random source, for reproducible evaluations.

    Returns:
        Adversarial images, same shape and dtype as ``x``, in [0, 1], ``|x_adv - x| <= eps``.
    """
    if queries < 1:
        raise ValueError("square needs queries >= 1")
    x = x.detach()
    if not attacks_anything(eps) or len(x) == 0:
        return x.clone()
    eps = radius(eps, x)
    batch, channels, height, width = x.shape
    with eval_mode(model):
        x_adv = (x + eps * _signs((batch, channels, 1, width), generator, x)).clamp(0.0, 1.0)
        margin = _margin(logits_of(model, params, x_adv), y)
        for query in range(queries):
            active = (margin > 0).nonzero().flatten()
            if len(active) == 0:
                break
            side = round(math.sqrt(window_fraction(query, queries) * height * width))
            side = max(1, min(side, height - 1, width - 1))
            top = int(torch.randint(0, height - side + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - side + 1, (1,), generator=generator))
            candidate = x_adv[active].clone()
            window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
            fresh = eps[active] * _signs((len(active), channels, 1, 1), generator, x)
            candidate[window] = (x[active][window] + fresh).clamp(0.0, 1.0)
            new_margin = _margin(logits_of(model, params, candidate), y[active])
            better = new_margin < margin[active]
            x_adv[active[better]] = candidate[better]
            margin[active[better]] = new_margin[better]
    return x_adv.detach()
