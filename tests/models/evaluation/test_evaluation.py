"""Adaptation, episode evaluation under attack, confidence intervals, sanity checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.core import AdaptConfig, FewShotNet, backbone_params, logits_of, mean_ci95
from models.data import ClassImages, EpisodeSampler
from models.evaluation import Cell, evaluate_episodes, sanity_checks
from models.meta import adapt, adapt_and_deploy
from tests.conftest import TINY, synthetic_task


def test_mean_ci95():
    mean, half = mean_ci95([0.5, 0.7])
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(1.96 * 0.1)
    assert math.isnan(mean_ci95([1.0])[1])


def _cells(**series: dict[float, float]) -> list[Cell]:
    return [
        Cell(attack.replace("_", "-"), eps, accuracy, 0.01, 10)
        for attack, by_eps in series.items()
        for eps, accuracy in by_eps.items()
    ]


def test_sanity_checks_pass_and_fail():
    good = sanity_checks(
        _cells(
            fgsm={0: 0.9, 0.1: 0.6, 0.5: 0.3},
            pgd_10={0: 0.9, 0.1: 0.5, 0.5: 0.1},
            pgd_100x5={0: 0.9, 0.1: 0.45, 0.5: 0.05},
            worst={0: 0.9, 0.1: 0.45, 0.5: 0.05},
        ),
        chance=0.2,
        blackbox_pairs=[(0.1, 0.7, 0.45)],
    )
    assert all(c.passed for c in good) and len(good) == 8, good
    bad = sanity_checks(
        _cells(
            fgsm={0: 0.9, 0.1: 0.4, 0.5: 0.6},
            pgd_10={0: 0.9, 0.1: 0.5, 0.5: 0.45},
            pgd_100x5={0: 0.9, 0.1: 0.55, 0.5: 0.4},
            worst={0: 0.9, 0.1: 0.4, 0.5: 0.35},
        ),
        chance=0.2,
        blackbox_pairs=[(0.1, 0.3, 0.4)],
    )
    assert {c.name: c.passed for c in bad} == {
        "fgsm_monotone": False,
        "pgd-10_monotone": True,
        "pgd-100x5_monotone": True,
        "worst_monotone": True,
        "more_budget_not_weaker": False,  # 100 steps x 5 restarts above 10 steps at 0.1
        "iterative_le_fgsm": False,
        "blackbox_weaker": False,  # gradient masking: black-box beat white-box
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
    from models.core import init_head

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
        attacks="fgsm,pgd-3,apgd-dlr-3,apgd-t-3",
        blackbox="square-4",
        blackbox_every=2,
    )
    keys = {(c.attack, c.eps) for c in result.cells}
    assert keys == {("clean", 0.0)} | {
        (a, e)
        for a in ("fgsm", "pgd-3", "apgd-dlr-3", "worst", "square-4")
        for e in (0.0, 0.1, 0.5)
    }
    assert result.skipped == {  # apgd-dlr-3 is already in the suite: no second copy
        "apgd-t-3": "needs at least 4 classes, the model has 3; apgd-dlr-3 runs in its place"
    }
    assert result.blackbox_episodes == 2  # episodes 0 and 2
    assert all(0 <= c.mean <= 1 for c in result.cells)
    assert {c.n for c in result.cells} == {3, 2}
    assert result.cell("fgsm", 0.0).mean == result.cell("clean", 0.0).mean
    for eps in (0.1, 0.5):
        worst = result.cell("worst", eps).mean
        others = [result.cell(a, eps).mean for a in ("fgsm", "pgd-3", "apgd-dlr-3")]
        assert worst <= min(others) + 1e-12
    assert {c.name for c in result.checks} == {
        "fgsm_monotone",
        "pgd-3_monotone",
        "apgd-dlr-3_monotone",
        "worst_monotone",
        "square-4_monotone",
        "iterative_le_fgsm",
        "blackbox_weaker",
        "chance_at_large_eps",
    }
    again = evaluate_episodes(
        TINY,
        backbone_params(model),
        sampler,
        episodes=3,
        adapt_config=AdaptConfig(steps=3),
        eps_grid=(0.0, 0.1),
        attacks="fgsm,pgd-3,apgd-dlr-3,apgd-t-3",
        blackbox="square-4",
        blackbox_every=2,
    )
    assert again.cells == result.cells
