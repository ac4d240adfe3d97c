"""Predictions of a deployed (frozen-norm) model: top-k labels and, on request, whether each
label survives an attack (``PREDICT_ATTACK``, whose gap to the full suite docs/robustness.md
measures).

Every figure of an image depends on that image alone (the model is in eval mode with frozen
norms, and the attack starts from the same direction for every image), so the service may batch
the images of concurrent requests into one pass: :func:`probabilities` and
:func:`label_survives` take any batch, :func:`answers` formats one request's share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from models.attacks import Attack
from models.core import FewShotNet
from models.service.jobs import PREDICT_ATTACK

START_SEED = 0  # the attack's start direction: one fixed draw, the same for every image


def probabilities(model: Callable[[Tensor], Tensor], images: Tensor) -> Tensor:
    """Class probabilities ``[n, N]`` of uint8 ``images`` ``[n, C, S, S]`` under ``model`` (a
    deployed model, or its ``inference_graph``)."""
    with torch.no_grad():
        return torch.softmax(model(images.float() / 255.0), dim=1)


def start_directions(x: Tensor) -> Tensor:
    """The attack's start direction for each image of ``x``: one draw from a fixed seed."""
    generator = torch.Generator().manual_seed(START_SEED)
    one = 2 * torch.rand(x.shape[1:], generator=generator, dtype=x.dtype) - 1
    return one.to(x.device).expand_as(x).contiguous()


def label_survives(
    model: FewShotNet, images: Tensor, labels: Tensor, *, eps: float, attack: Attack
) -> list[bool]:
    """Whether each predicted label ``labels`` ``[n]`` survives ``attack`` (L-inf ``eps``) on
    uint8 ``images`` ``[n, C, S, S]``: the attack aims at changing it."""
    x = images.float() / 255.0
    generator = torch.Generator().manual_seed(START_SEED)
    start = start_directions(x) if attack.takes_start else None
    x_adv = attack(model, x, labels, eps=eps, generator=generator, start=start)
    with torch.no_grad():
        return (model(x_adv).argmax(1) == labels).tolist()


def answers(
    probabilities: Tensor,
    classes: list[str],
    *,
    top_k: int,
    survives: list[bool] | None = None,
    attack: Attack = PREDICT_ATTACK,
    eps: float | None = None,
) -> list[dict[str, Any]]:
    """One answer per row of ``probabilities``, in order: the label and the ``top_k`` classes
    with probabilities; with ``survives``, whether the label survived ``attack`` at ``eps``."""
    k = min(top_k, len(classes))
    top = torch.topk(probabilities, k, dim=1)
    labels = probabilities.argmax(1).tolist()
    result = []
    for i, (values, indices) in enumerate(
        zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ):
        answer: dict[str, Any] = {
            "label": classes[labels[i]],
            "top": [
                {"label": classes[j], "probability": round(p, 6)}
                for p, j in zip(values, indices, strict=True)
            ],
        }
        if survives is not None:
            answer["robustness"] = {
                "attack": attack.name,
                "eps": eps,
                "label_survives": bool(survives[i]),
            }
        result.append(answer)
    return result


def predict(
    model: FewShotNet,
    images: Tensor,
    classes: list[str],
    *,
    top_k: int,
    robustness_eps: float | None = None,
    attack: Attack = PREDICT_ATTACK,
) -> list[dict[str, Any]]:
    """:func:`answers` for uint8 ``images`` ``[n, C, S, S]``; with ``robustness_eps``, whether
    each label survives ``attack`` at that budget."""
    scores = probabilities(model, images)
    survives = None
    if robustness_eps is not None:
        labels = scores.argmax(1)
        survives = label_survives(model, images, labels, eps=robustness_eps, attack=attack)
    return answers(
        scores, classes, top_k=top_k, survives=survives, attack=attack, eps=robustness_eps
    )
