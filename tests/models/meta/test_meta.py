"""ADML/MAML meta-gradients against finite differences and against their definitions."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from models.attacks import fgsm
from models.core import FewShotNet, MetaConfig, backbone_params, logits_of
from models.meta import accumulate_meta_gradient, task_loss
from tests.conftest import TINY, synthetic_task

CONFIG = MetaConfig(
    algo="adml", way=3, shot=2, query=2, inner_steps=2, inner_lr=0.1, meta_batch=2, eps=0.05
)


def _setup(config: MetaConfig, dtype=torch.float64):
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=config.way).to(dtype)
    tasks = [
        synthetic_task(config.way, config.shot, config.query, seed=s, dtype=dtype) for s in (1, 2)
    ]
    return model, tasks


def _analytic_gradient(model, tasks, config) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    accumulate_meta_gradient(model, tasks, config)
    return {k: p.grad.clone() for k, p in backbone_params(model).items()}


def _meta_loss(model, theta, tasks, config) -> float:
    return sum(task_loss(model, theta, t, config).loss.item() for t in tasks) / len(tasks)


@pytest.mark.parametrize("algo", ["adml", "maml"])
@pytest.mark.parametrize("head_init", ["proto", "zero"])
def test_second_order_meta_gradient_matches_finite_differences(algo, head_init):
    config = dataclasses.replace(CONFIG, algo=algo, head_init=head_init)
    model, tasks = _setup(config)
    grad = _analytic_gradient(model, tasks, config)
    theta = backbone_params(model)
    gen = torch.Generator().manual_seed(7)
    h = 1e-6
    for _ in range(4):
        direction = {
            k: torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in theta.items()
        }
        plus = {k: v + h * direction[k] for k, v in theta.items()}
        minus = {k: v - h * direction[k] for k, v in theta.items()}
        numeric = _meta_loss(model, plus, tasks, config) - _meta_loss(model, minus, tasks, config)
        numeric /= 2 * h
        analytic = sum((grad[k] * direction[k]).sum().item() for k in theta)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def _sgd(model, params, x, y, steps, lr):
    for _ in range(steps):
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(
            F.cross_entropy(logits_of(model, leaves, x), y), list(leaves.values())
        )
        params = {k: v.detach() - lr * g for (k, v), g in zip(leaves.items(), grads, strict=True)}
    return params


def test_first_order_adml_matches_its_definition():
    """First order: the meta-gradient is the query-loss gradient at the adapted weights."""
    config = dataclasses.replace(CONFIG, first_order=True, head_init="zero")
    model, tasks = _setup(config)
    grad = _analytic_gradient(model, tasks, config)
    expected = {k: torch.zeros_like(v) for k, v in grad.items()}
    for task in tasks:
        head = {
            "head.weight": torch.zeros(config.way, TINY.feature_size, dtype=torch.float64),
            "head.bias": torch.zeros(config.way, dtype=torch.float64),
        }
        start = {**{k: v.detach() for k, v in backbone_params(model).items()}, **head}
        x_s_adv = fgsm(model, task.x_support, task.y_support, eps=config.eps, params=start)
        theta_c = _sgd(
            model, start, task.x_support, task.y_support, config.inner_steps, config.inner_lr
        )
        theta_a = _sgd(model, start, x_s_adv, task.y_support, config.inner_steps, config.inner_lr)
        x_q_adv = fgsm(model, task.x_query, task.y_query, eps=config.eps, params=theta_c)
        for adapted, x_q in ((theta_c, x_q_adv), (theta_a, task.x_query)):
            leaves = {k: v.requires_grad_() for k, v in adapted.items()}
            loss = F.cross_entropy(logits_of(model, leaves, x_q), task.y_query)
            loss.backward()
            for k in expected:
                expected[k] += leaves[k].grad / len(tasks)
    for k in grad:
        torch.testing.assert_close(grad[k], expected[k])


def test_first_order_differs_from_second_order():
    model, tasks = _setup(CONFIG)
    second = _analytic_gradient(model, tasks, CONFIG)
    first = _analytic_gradient(model, tasks, dataclasses.replace(CONFIG, first_order=True))
    assert any(not torch.allclose(first[k], second[k]) for k in first)


@pytest.mark.parametrize("first_order", [False, True])
def test_adml_without_attacks_is_twice_maml(first_order):
    adml = dataclasses.replace(CONFIG, eps=0.0, first_order=first_order)
    maml = dataclasses.replace(adml, algo="maml")
    model, tasks = _setup(adml)
    grad_adml = _analytic_gradient(model, tasks, adml)
    grad_maml = _analytic_gradient(model, tasks, maml)
    for k in grad_adml:
        torch.testing.assert_close(grad_adml[k], 2 * grad_maml[k])


def test_attacks_change_the_adml_gradient():
    model, tasks = _setup(CONFIG)
    with_attacks = _analytic_gradient(model, tasks, CONFIG)
    without = _analytic_gradient(model, tasks, dataclasses.replace(CONFIG, eps=0.0))
    assert any(not torch.allclose(with_attacks[k], without[k]) for k in with_attacks)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("algo", ["adml", "aq"])
def test_v2_options_keep_the_meta_gradient_exact(attack, algo):
    """PGD copies, the TRADES term and adversarial querying: the second-order meta-gradient
    still matches finite differences (the copies are data; the KL term is differentiated)."""
    config = dataclasses.replace(CONFIG, algo=algo, attack=attack, attack_steps=2, trades=3.0)
    model, tasks = _setup(config)
    torch.manual_seed(5)  # PGD's random starts: the same starts in all three passes
    grad = _analytic_gradient(model, tasks, config)
    theta = backbone_params(model)
    direction = {
        k: torch.randn(v.shape, generator=torch.Generator().manual_seed(1), dtype=v.dtype)
        for k, v in theta.items()
    }
    h = 1e-6
    plus = {k: v + h * direction[k] for k, v in theta.items()}
    minus = {k: v - h * direction[k] for k, v in theta.items()}
    torch.manual_seed(5)
    up = _meta_loss(model, plus, tasks, config)
    torch.manual_seed(5)
    down = _meta_loss(model, minus, tasks, config)
    analytic = sum((grad[k] * direction[k]).sum().item() for k in theta)
    assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_trades_at_eps_zero_is_plain_cross_entropy_and_grows_with_eps():
    trades = dataclasses.replace(CONFIG, eps=0.0, trades=5.0)
    model, tasks = _setup(trades)
    theta = backbone_params(model)
    plain = _meta_loss(model, theta, tasks, dataclasses.replace(trades, trades=0.0))
    assert _meta_loss(model, theta, tasks, trades) == pytest.approx(plain)  # KL(p || p) = 0
    attacked = dataclasses.replace(trades, eps=0.2)
    assert _meta_loss(model, theta, tasks, attacked) > _meta_loss(
        model, theta, tasks, dataclasses.replace(attacked, trades=0.0, eps=0.0)
    )


def test_adversarial_querying_adapts_on_clean_support_and_scores_attacked_queries():
    config = dataclasses.replace(CONFIG, algo="aq", inner_steps=1)
    model, tasks = _setup(config)
    theta = backbone_params(model)
    task = tasks[0]
    from models.core import init_head
    from models.meta import inner_adapt  # the definition, written out

    head = init_head(model, theta, task.x_support, task.y_support, config.way, config.head_init)
    theta_c = inner_adapt(
        model,
        {**theta, **head},
        task.x_support,
        task.y_support,
        steps=1,
        lr=config.inner_lr,
        create_graph=True,
    )
    x_adv = fgsm(model, task.x_query, task.y_query, eps=config.eps, params=theta_c)
    expected = F.cross_entropy(logits_of(model, theta_c, x_adv), task.y_query)
    assert task_loss(model, theta, task, config).loss.item() == pytest.approx(expected.item())


def test_eps_ramp_rises_linearly_to_the_train_eps():
    ramp = dataclasses.replace(CONFIG, eps=0.1, eps_ramp=4)
    assert [ramp.eps_at(i) for i in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert CONFIG.eps_at(0) == CONFIG.eps
    for bad in ({"attack": "cw"}, {"attack_steps": 0}, {"eps_ramp": -1}, {"trades": -1.0}):
        with pytest.raises(ValueError):
            dataclasses.replace(CONFIG, **bad)
