"""Predictions of a deployed (frozen-norm) model: top-k labels and, on request, whether each
label survives an attack (``PREDICT_ATTACK``, whose gap to the full suite docs/robustness.md
measures)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.attack_suite import Attack
from models.networks import FewShotNet
from models.service_jobs import PREDICT_ATTACK


def predict(
    model: FewShotNet,
    images: Tensor,
    classes: list[str],
    *,
    top_k: int,
    robustness_eps: float | None = None,
    attack: Attack = PREDICT_ATTACK,
) -> list[dict[str, Any]]:
    """One answer per image of uint8 ``images`` ``[n, C, S, S]``, in order: the label and the
    ``top_k`` classes with probabilities; with ``robustness_eps``, whether the label survives
    ``attack`` (L-inf, that budget, fixed seed) aimed at changing it."""
    x = images.float() / 255.0
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1)
    labels = probabilities.argmax(1)
    survives = None
    if robustness_eps is not None:
        generator = torch.Generator().manual_seed(0)
        x_adv = attack(model, x, labels, eps=robustness_eps, generator=generator)
        with torch.no_grad():
            survives = (model(x_adv).argmax(1) == labels).tolist()
    k = min(top_k, len(classes))
    answers = []
    for i, row in enumerate(probabilities):
        top = torch.topk(row, k)
        answer: dict[str, Any] = {
            "label": classes[int(labels[i])],
            "top": [
                {"label": classes[int(j)], "probability": round(float(p), 6)}
                for p, j in zip(top.values, top.indices, strict=True)
            ],
        }
        if survives is not None:
            answer["robustness"] = {
                "attack": attack.name,
                "eps": robustness_eps,
                "label_survives": bool(survives[i]),
            }
        answers.append(answer)
    return answers
