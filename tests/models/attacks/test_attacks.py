"""FGSM and PGD: budgets, value range, strength, and no side effects on the model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from models.attacks import fgsm, pgd


def _loss(model, x, y) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_trained_fixture_is_accurate(trained):
    model, x, y = trained
    assert _accuracy(model, x, y) >= 0.9


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("eps", [0.03, 0.1, 0.3])
def test_budget_range_and_loss(trained, attack, eps):
    model, x, y = trained
    x_adv = fgsm(model, x, y, eps=eps) if attack == "fgsm" else pgd(model, x, y, eps=eps, steps=10)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert (x_adv - x).abs().max().item() <= eps + 1e-6
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    assert not x_adv.requires_grad
    assert _loss(model, x_adv, y) > _loss(model, x, y)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_float32_stays_float32_within_budget(trained, attack):
    model, x, y = trained
    model32, x32 = copy.deepcopy(model).float(), x.float()
    x_adv = fgsm(model32, x32, y, eps=0.1) if attack == "fgsm" else pgd(model32, x32, y, eps=0.1)
    assert x_adv.dtype == torch.float32 and not torch.equal(x_adv, x32)
    assert (x_adv - x32).abs().max().item() <= 0.1 + 1e-6
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0


def test_eps_zero_returns_the_input(trained):
    model, x, y = trained
    assert torch.equal(fgsm(model, x, y, eps=0.0), x)
    assert torch.equal(pgd(model, x, y, eps=0.0), x)


@pytest.mark.parametrize("start_training", [True, False])
def test_weights_untouched_and_mode_restored(trained, start_training):
    model, x, y = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(start_training)
    fgsm(model, x, y, eps=0.1)
    pgd(model, x, y, eps=0.1, steps=3)
    assert all(m.training == start_training for m in model.modules())
    model.eval()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, x, y = trained
    gen = torch.Generator().manual_seed(0)
    for eps in (0.1, 0.2):
        by_fgsm = fgsm(model, x, y, eps=eps)
        by_pgd = pgd(model, x, y, eps=eps, steps=20, generator=gen)
        assert _accuracy(model, by_pgd, y) <= _accuracy(model, by_fgsm, y)
        assert _loss(model, by_pgd, y) >= _loss(model, by_fgsm, y)


def test_pgd_random_start_is_reproducible(trained):
    model, x, y = trained
    first = pgd(model, x, y, eps=0.1, steps=2, generator=torch.Generator().manual_seed(3))
    second = pgd(model, x, y, eps=0.1, steps=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


def test_explicit_params_are_used_and_not_touched(trained):
    model, x, y = trained
    own = dict(model.named_parameters())
    assert torch.equal(fgsm(model, x, y, eps=0.1, params=own), fgsm(model, x, y, eps=0.1))
    other = {k: (v.detach() * 1.5).requires_grad_() for k, v in own.items()}
    assert not torch.equal(fgsm(model, x, y, eps=0.1, params=other), fgsm(model, x, y, eps=0.1))
    assert all(v.grad is None for v in other.values())
