"""The report and the attacks on a CUDA device: every tensor they build follows the images'
device (a per-image budget made on the CPU once broke every report of a GPU worker).
Skipped without CUDA; run on a GPU machine with ``pytest -m gpu``."""

from __future__ import annotations

import pytest
import torch

from models.attacks import parse_attack
from models.core import AdaptConfig, FewShotNet, backbone_params
from models.report import robustness_report
from tests.conftest import TINY, synthetic_task

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
SUITE = "fgsm,pgd-3x2,apgd-ce-4,apgd-t-4,square-15"


def test_a_report_runs_on_the_gpu_and_matches_its_suite():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=4)
    task = synthetic_task(4, 3, 0, seed=2)
    params = {name: value.cuda() for name, value in backbone_params(model).items()}
    report = robustness_report(
        TINY,
        params,
        task.x_support.cuda(),
        task.y_support.cuda(),
        n_way=4,
        adapt_config=AdaptConfig(steps=3, eps=0.1),
        eps_grid=(0.0, 0.1),
        attacks=SUITE,
    )
    assert report["available"] and report["attacks_skipped"] == {}
    assert list(report["threat_model"]["attacks"]) == [*SUITE.split(","), "worst"]


@pytest.mark.parametrize("name", SUITE.split(","))
def test_every_attack_takes_per_image_budgets_on_the_gpu(name):
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=4).cuda().eval()
    x = torch.rand(8, TINY.in_channels, TINY.image_size, TINY.image_size, device="cuda")
    y = torch.arange(8, device="cuda") % 4
    eps = torch.tensor([0.05, 0.3], device="cuda").repeat_interleave(4)
    x_adv = parse_attack(name)(model, x, y, eps=eps, generator=torch.Generator())
    assert x_adv.device == x.device
    assert ((x_adv - x).flatten(1).abs().amax(1) <= eps + 1e-6).all()
