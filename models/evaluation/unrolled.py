"""The service's adaptation and deployment, differentiable with respect to the support images.

:func:`unrolled_adapt` computes the same weights as :func:`models.meta.adapt` (the same head
initialisation, steps, learning rate, clean + FGSM copies, affine copies; tested equal) but keeps
the graph of every SGD step, so a gradient flows from the adapted weights back to the support
pixels, second order through each step, as the meta-gradient of meta-training does.
:func:`deployed_logits` is :func:`models.core.deployable`'s frozen-norm network (BatchNorm
statistics of the support set) as a function of the support images too.

What carries no gradient, as in the service: the sign of the FGSM direction (piecewise constant:
its derivative is zero wherever it exists), the random start of FGSM-RS and the affine draws.
The FGSM copy ``clip(x + eps * sign(g), 0, 1)`` passes the gradient on to ``x`` wherever the clip
does not bind.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.core import (
    AdaptConfig,
    BackboneConfig,
    FewShotNet,
    HeadInit,
    Params,
    init_head,
    logits_of,
)
from models.data import affine_copies


def _fgsm_copies(
    model: FewShotNet, params: Params, x: Tensor, y: Tensor, config: AdaptConfig
) -> Tensor:
    """The adaptation's FGSM (or FGSM-RS) copies of ``x``, with the value of
    :func:`models.attacks.fgsm` (:func:`~models.attacks.fgsm_rs`) and the gradient of the
    identity wherever no clip binds (the direction is a constant)."""
    eps = config.eps
    start = x
    if config.random_start:  # the draw of models.attacks.pgd: CPU, the global generator
        noise = torch.rand(x.shape, dtype=x.dtype, device="cpu").to(x.device)
        start = (x + (2 * noise - 1) * eps).clamp(0.0, 1.0)
    probe = start.detach().requires_grad_(True)
    detached = {k: v.detach() for k, v in params.items()}
    loss = F.cross_entropy(logits_of(model, detached, probe), y)
    (grad,) = torch.autograd.grad(loss, probe)
    if not config.random_start:
        return (x + eps * grad.sign()).clamp(0.0, 1.0)
    moved = start + 1.25 * eps * grad.sign()
    return torch.min(torch.max(moved, x - eps), x + eps).clamp(0.0, 1.0)


def unrolled_adapt(
    config: BackboneConfig,
    backbone: Params,
    x_support: Tensor,
    y_support: Tensor,
    *,
    n_way: int,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> Params:
    """:func:`models.meta.adapt`'s weights as a differentiable function of ``x_support``.

    Shapes and ranges as :func:`models.meta.adapt`. The affine copies come from ``generator``
    (None: torch's global one, in the order :func:`~models.meta.adapt` draws them, so that the
    same global seed gives the same weights). With ``create_graph=False`` the weights carry no
    graph (a cheap forward, e.g. to score an attack's iterate).
    """
    model = FewShotNet(config, n_way=n_way).to(device=x_support.device, dtype=x_support.dtype)
    start = {
        k: v.detach().to(device=x_support.device, dtype=x_support.dtype)
        for k, v in backbone.items()
    }
    # the service initialises the head without a graph: it depends on the support images,
    # never on the backbone's weights (the first step's gradient must not run through it)
    head = init_head(model, start, x_support, y_support, n_way, head_init)
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    params |= {k: v if v.requires_grad else v.clone().requires_grad_(True) for k, v in head.items()}
    use_attack = adapt_config.adversarial and adapt_config.eps > 0
    with torch.enable_grad():
        for _ in range(adapt_config.steps):
            x_step, y_step = x_support, y_support
            if adapt_config.augment:
                copies = affine_copies(x_support, adapt_config.augment, generator=generator)
                x_step = torch.cat([x_support, copies])
                y_step = y_support.repeat(1 + adapt_config.augment)
            loss = F.cross_entropy(logits_of(model, params, x_step), y_step)
            if use_attack:
                x_adv = _fgsm_copies(model, params, x_step, y_step, adapt_config)
                loss = loss + F.cross_entropy(logits_of(model, params, x_adv), y_step)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
            params = {
                name: torch.add(value, grad, alpha=-adapt_config.lr)
                for (name, value), grad in zip(params.items(), grads, strict=True)
            }
            if not create_graph:
                params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    return params if create_graph else {k: v.detach() for k, v in params.items()}


def deployed_logits(
    config: BackboneConfig, params: Params, x_reference: Tensor, x: Tensor
) -> Tensor:
    """Logits ``[B, n_way]`` of ``x`` under :func:`models.core.deployable`'s network (BatchNorm
    statistics those of ``x_reference``, the biased variance), differentiable in all three."""
    n_way = params["head.weight"].shape[0]
    blocks = [m for m in FewShotNet(config, n_way=n_way).features if isinstance(m, nn.Sequential)]
    reference, h = x_reference, x
    for index, block in enumerate(blocks):
        conv, norm = block[0], block[1]
        weight, bias = params[f"features.{index}.0.weight"], params[f"features.{index}.0.bias"]
        reference = F.conv2d(reference, weight, bias, padding=conv.padding)
        h = F.conv2d(h, weight, bias, padding=conv.padding)
        mean = reference.mean((0, 2, 3), keepdim=True)
        std = (reference.var((0, 2, 3), unbiased=False, keepdim=True) + norm.eps).sqrt()
        gain = params[f"features.{index}.1.weight"].view(1, -1, 1, 1)
        shift = params[f"features.{index}.1.bias"].view(1, -1, 1, 1)
        reference = (reference - mean) / std * gain + shift
        h = (h - mean) / std * gain + shift
        reference = F.max_pool2d(F.relu(reference), 2)
        h = F.max_pool2d(F.relu(h), 2)
    return F.linear(h.flatten(1), params["head.weight"], params["head.bias"])
