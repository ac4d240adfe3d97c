"""Service-time adaptation of a meta-trained initialization to one support set.

Adversarial fine-tuning: ``steps`` SGD steps on ``L(S) + L(FGSM(S))``, with the FGSM copies
regenerated against the current weights at every step (from a random start in the eps-ball with
``random_start``). With ``augment`` = k, S also holds k random affine copies of each support
image, drawn again at every step (:mod:`models.data.augment`), and they get FGSM copies too.
``adversarial=False`` (or ``eps=0``) gives the clean-only fine-tune that robustness reports
compare against.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from models.attacks import fgsm, fgsm_rs
from models.core import (
    AdaptConfig,
    BackboneConfig,
    FewShotNet,
    HeadInit,
    Params,
    deployable,
    init_head,
    logits_of,
)
from models.data import affine_copies

StepCallback = Callable[[int, int, float], None]  # (step done, total steps, loss)


def adapt(
    config: BackboneConfig,
    backbone: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    on_step: StepCallback | None = None,
) -> Params:
    """Fine-tuned backbone + head parameters (detached) for an ``n_way`` support set.

    ``backbone`` maps ``features.*`` names to tensors (never modified); ``x_support`` is
    ``[B, C, S, S]`` in [0, 1] on the device and dtype to compute with; ``y_support`` ``[B]``
    int64 in ``0..n_way-1``. ``on_step`` is called after each step (it may raise to cancel).
    """
    model = FewShotNet(config, n_way=n_way).to(device=x_support.device, dtype=x_support.dtype)
    start = {
        k: v.detach().to(device=x_support.device, dtype=x_support.dtype)
        for k, v in backbone.items()
    }
    with torch.no_grad():
        head = init_head(model, start, x_support, y_support, n_way, head_init)
    params = {k: v.clone().requires_grad_(True) for k, v in {**start, **head}.items()}
    optimizer = torch.optim.SGD(params.values(), lr=adapt_config.lr)
    use_attack = adapt_config.adversarial and adapt_config.eps > 0
    for step in range(adapt_config.steps):
        optimizer.zero_grad(set_to_none=True)
        x_step, y_step = x_support, y_support
        if adapt_config.augment:
            x_step = torch.cat([x_support, affine_copies(x_support, adapt_config.augment)])
            y_step = y_support.repeat(1 + adapt_config.augment)
        loss = F.cross_entropy(logits_of(model, params, x_step), y_step)
        if use_attack:
            attack = fgsm_rs if adapt_config.random_start else fgsm
            x_adv = attack(model, x_step, y_step, eps=adapt_config.eps, params=params)
            loss = loss + F.cross_entropy(logits_of(model, params, x_adv), y_step)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1, adapt_config.steps, loss.item())
    return {k: v.detach() for k, v in params.items()}


def adapt_and_deploy(
    config: BackboneConfig,
    backbone: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    on_step: StepCallback | None = None,
) -> FewShotNet:
    """:func:`adapt`, then a frozen-norm module calibrated on the clean support set (eval mode)."""
    params = adapt(
        config,
        backbone,
        x_support,
        y_support,
        n_way=n_way,
        adapt_config=adapt_config,
        head_init=head_init,
        on_step=on_step,
    )
    return deployable(config, params, x_support)
