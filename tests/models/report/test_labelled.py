"""An evaluation job's measure: one deployed model's accuracy under the suite on labelled
images."""

from __future__ import annotations

import torch

from models.core import FewShotNet, backbone_params, deployable, init_head
from models.report import accuracy_under_attack
from tests.conftest import TINY, synthetic_task

SUITE = "fgsm,pgd-3,apgd-ce-4,apgd-t-4,square-15"  # apgd-t needs 4 classes


def test_an_evaluation_skips_what_cannot_run_on_its_classes():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3)
    task = synthetic_task(3, 2, 4, seed=3)
    theta = backbone_params(model)
    head = init_head(model, theta, task.x_support, task.y_support, 3, "proto")
    deployed = deployable(TINY, {**theta, **head}, task.x_support)
    result = accuracy_under_attack(
        deployed, task.x_query, task.y_query, n_way=3, eps_grid=(0.1,), attacks=SUITE
    )
    assert result["examples"] == 12
    assert "needs at least 4 classes" in result["attacks_skipped"]["apgd-t-4"]
    assert {c["attack"] for c in result["cells"]} == {
        "clean",
        "fgsm",
        "pgd-3",
        "apgd-ce-4",
        "apgd-dlr-4",  # in place of apgd-t-4: the report keeps a DLR-loss attack on 3 classes
        "square-15",
        "worst",
    }
    assert all("ci95" not in c and c["low"] <= c["mean"] <= c["high"] for c in result["cells"])
