"""Predictions of a deployed model: order, top-k, and the robustness flag's extremes."""

from __future__ import annotations

import pytest
import torch

from models.attacks import parse_attack
from models.core import FewShotNet, backbone_params, deployable, init_head
from models.service import label_survives, predict, probabilities
from tests.conftest import TINY, synthetic_task


def deployed_tiny(queries: int):
    """A deployed 3-way TINY model, its synthetic task and the task's queries as uint8."""
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3)
    task = synthetic_task(3, 2, queries)
    theta = backbone_params(model)
    head = init_head(model, theta, task.x_support, task.y_support, 3, "proto")
    deployed = deployable(TINY, {**theta, **head}, task.x_support)
    return deployed, task, (task.x_query * 255).round().to(torch.uint8)


def test_labels_top_k_and_robustness_flags():
    deployed, _, images = deployed_tiny(queries=4)
    classes = ["a", "b", "c"]
    plain = predict(deployed, images, classes, top_k=2)
    assert len(plain) == len(images) and all("robustness" not in p for p in plain)
    assert all(len(p["top"]) == 2 and p["top"][0]["label"] == p["label"] for p in plain)
    untouched = predict(deployed, images, classes, top_k=5, robustness_eps=0.0)
    assert all(p["robustness"]["label_survives"] for p in untouched)  # eps 0: no change
    assert all(len(p["top"]) == 3 for p in untouched)  # top_k capped at the classes
    attack = parse_attack("pgd-10")
    wrecked = predict(deployed, images, classes, top_k=1, robustness_eps=1.0, attack=attack)
    survivors = sum(p["robustness"]["label_survives"] for p in wrecked)
    assert survivors < len(images)  # eps 1 may paint any image: labels fall
    assert wrecked[0]["robustness"]["attack"] == "pgd-10"


def test_each_robustness_verdict_depends_on_its_image_alone():
    deployed, task, images = deployed_tiny(queries=6)
    labels = probabilities(deployed, images).argmax(1)
    attack = parse_attack("apgd-ce-5")
    together = label_survives(deployed, images, labels, eps=0.1, attack=attack)
    alone = [
        label_survives(deployed, images[i : i + 1], labels[i : i + 1], eps=0.1, attack=attack)[0]
        for i in range(len(images))
    ]
    assert together == alone  # a batch of concurrent requests changes no verdict
    assert 0 < sum(together) < len(images)  # eps 0.1 breaks some labels, not all: a real test
    with pytest.raises(ValueError, match="takes no start"):
        parse_attack("pgd-5")(
            deployed,
            task.x_query,
            labels,
            eps=0.1,
            generator=None,
            start=torch.zeros_like(task.x_query),
        )
