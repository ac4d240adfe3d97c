"""Adaptation, episode evaluation under attack, confidence intervals, sanity checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.adapt import adapt, adapt_and_deploy
from models.config import AdaptConfig
from models.data import ClassImages
from models.episodes import EpisodeSampler
from models.evaluation import Cell, evaluate_episodes, mean_ci95, sanity_checks
from models.networks import FewShotNet, backbone_params, logits_of
from tests.conftest import TINY, synthetic_task


def test_mean_ci95():
    mean, half = mean_ci95([0.5, 0.7])
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(1.96 * 0.1)
    assert math.isnan(mean_ci95([1.0])[1])


def _cells(fgsm: dict[float, float], pgd: dict[float, float]) -> list[Cell]:
    return [Cell("fgsm", e, a, 0.01, 10) for e, a in fgsm.items()] + [
        Cell("pgd", e, a, 0.01, 10) for e, a in pgd.items()
    ]


def test_sanity_checks_pass_and_fail():
    good = sanity_checks(
        _cells({0: 0.9, 0.1: 0.6, 0.5: 0.3}, {0: 0.9, 0.1: 0.5, 0.5: 0.1}), chance=0.2
    )
    assert [c.passed for c in good] == [True, True, True, True]
    bad = sanity_checks(
        _cells({0: 0.9, 0.1: 0.4, 0.5: 0.6}, {0: 0.9, 0.1: 0.5, 0.5: 0.45}), chance=0.2
    )
    assert {c.name: c.passed for c in bad} == {
        "fgsm_monotone": False,
        "pgd_monotone": True,
        "pgd_le_fgsm": False,
        "chance_at_large_eps": False,
    }


def test_adaptation_fits_the_support_set_and_leaves_the_init_alone():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3)
    init = {k: v.detach().clone() for k, v in backbone_params(model).items()}
    task = synthetic_task(3, 3, 2)
    steps_seen = []
    config = AdaptConfig(steps=15, lr=0.1, eps=0.1)
    params = adapt(
        TINY,
        init,
        task.x_support,
        task.y_support,
        n_way=3,
        adapt_config=config,
        on_step=lambda step, total, loss: steps_seen.append((step, total)),
    )
    assert steps_seen == [(s, 15) for s in range(1, 16)]
    assert all(torch.equal(v, backbone_params(model)[k]) for k, v in init.items())
    before = F.cross_entropy(
        logits_of(model, {**init, **_proto(model, init, task)}, task.x_support), task.y_support
    )
    after = F.cross_entropy(logits_of(model, params, task.x_support), task.y_support)
    assert after < before
    clean = adapt(
        TINY,
        init,
        task.x_support,
        task.y_support,
        n_way=3,
        adapt_config=AdaptConfig(steps=15, lr=0.1, adversarial=False),
    )
    assert any(not torch.equal(clean[k], params[k]) for k in params)


def _proto(model, theta, task):
    from models.networks import init_head

    return init_head(model, theta, task.x_support, task.y_support, 3, "proto")


def test_adapt_and_deploy_gives_an_eval_model_for_n_way():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=5)
    task = synthetic_task(4, 2, 2)
    deployed = adapt_and_deploy(
        TINY,
        backbone_params(model),
        task.x_support,
        task.y_support,
        n_way=4,
        adapt_config=AdaptConfig(steps=2),
    )
    assert not deployed.training and deployed(task.x_query).shape == (8, 4)


def _synthetic_classes(n: int) -> list[ClassImages]:
    classes = []
    for k in range(n):
        task = synthetic_task(1, 6, 0, seed=100 + k)
        classes.append(ClassImages(f"c{k}", f"c{k}", (task.x_support * 255).to(torch.uint8)))
    return classes


def test_evaluate_episodes_table_is_complete_and_consistent():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3)
    sampler = EpisodeSampler(_synthetic_classes(6), way=3, shot=2, query=3, seed=0)
    result = evaluate_episodes(
        TINY,
        backbone_params(model),
        sampler,
        episodes=3,
        adapt_config=AdaptConfig(steps=3),
        eps_grid=(0.0, 0.1),
        pgd_steps=3,
    )
    keys = {(c.attack, c.eps) for c in result.cells}
    assert keys == {("clean", 0.0)} | {
        (a, e) for a in ("fgsm", "pgd", "worst") for e in (0.0, 0.1, 0.5)
    }
    assert all(0 <= c.mean <= 1 and c.n == 3 for c in result.cells)
    assert result.cell("fgsm", 0.0).mean == result.cell("clean", 0.0).mean
    for eps in (0.1, 0.5):
        worst = result.cell("worst", eps).mean
        assert worst <= min(result.cell("fgsm", eps).mean, result.cell("pgd", eps).mean) + 1e-12
    assert {c.name for c in result.checks} == {
        "fgsm_monotone",
        "pgd_monotone",
        "pgd_le_fgsm",
        "chance_at_large_eps",
    }
    again = evaluate_episodes(
        TINY,
        backbone_params(model),
        sampler,
        episodes=3,
        adapt_config=AdaptConfig(steps=3),
        eps_grid=(0.0, 0.1),
        pgd_steps=3,
    )
    assert again.cells == result.cells
