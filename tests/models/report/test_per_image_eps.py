"""Attacks at a budget per image: one call on copies of a batch at several eps answers as
separate calls at each eps would (the service's reports batch their eps this way)."""

from __future__ import annotations

import pytest
import torch

from models.attacks import apgd, fgsm, parse_attack, pgd, radius, suite_correctness
from models.report import every_eps

GRID = (0.03, 0.1, 0.3)
ALL = "fgsm,pgd-10,pgd-10x3,apgd-ce-10,apgd-dlr-10,apgd-t-10,square-300"


def _copies(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    eps = torch.tensor(GRID, dtype=x.dtype).repeat_interleave(len(y))
    return x.repeat(len(GRID), 1, 1, 1), y.repeat(len(GRID)), eps


@pytest.mark.parametrize(
    "attack",
    [
        lambda model, x, y, eps: fgsm(model, x, y, eps=eps),
        lambda model, x, y, eps: pgd(model, x, y, eps=eps, steps=10, random_start=False),
        lambda model, x, y, eps: apgd(model, x, y, eps=eps, steps=10, start=torch.ones_like(x)),
    ],
    ids=["fgsm", "pgd", "apgd"],
)
def test_a_deterministic_attack_batched_over_eps_equals_one_call_per_eps(trained, attack):
    model, x, y = trained
    x_all, y_all, eps_all = _copies(x, y)
    batched = attack(model, x_all, y_all, eps_all).view(len(GRID), *x.shape)
    for index, eps in enumerate(GRID):
        alone = attack(model, x, y, eps)
        assert torch.allclose(batched[index], alone, atol=1e-9), eps
        assert (batched[index] - x).abs().max() > eps / 2  # it did attack at this eps


@pytest.mark.parametrize("name", ALL.split(","))
def test_every_attack_keeps_each_image_within_its_own_budget(trained, name):
    model, x, y = trained
    x_all, y_all, eps_all = _copies(x, y)
    x_adv = parse_attack(name)(model, x_all, y_all, eps=eps_all, generator=torch.Generator())
    moved = (x_adv - x_all).flatten(1).abs().amax(1)
    assert (moved <= eps_all + 1e-12).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (moved[eps_all == GRID[-1]] > GRID[0]).any()  # the large budgets were used


def test_accuracy_per_eps_from_one_batched_call_falls_with_eps(trained):
    model, x, y = trained
    x_all, y_all, eps_all = _copies(x, y)
    outcome = suite_correctness(
        model,
        x_all,
        y_all,
        attacks=[parse_attack("apgd-ce-10")],
        eps=eps_all,
        generator=torch.Generator().manual_seed(0),
    )["worst"].view(len(GRID), -1)
    accuracy = outcome.double().mean(1)
    assert accuracy[0] > accuracy[-1]  # a larger budget breaks more images
    assert (accuracy[:-1] >= accuracy[1:]).all()


def test_a_per_image_budget_of_the_wrong_shape_is_refused(trained):
    _, x, _ = trained
    with pytest.raises(ValueError, match="per-image eps must have shape"):
        radius(torch.tensor([0.1, 0.2]), x)


def test_a_report_batched_over_eps_matches_one_call_per_eps(trained):
    """The report's batching (copies per eps, results split back) with a deterministic attack:
    every eps of the grid, 0 included, gets the per-example outcome of its own call."""
    model, x, y = trained
    attack = parse_attack("fgsm")
    grid = (0.0, *GRID)
    clean = model(x).argmax(1) == y
    batched = every_eps(model, x, y, attack, grid, torch.Generator(), clean)
    for eps, outcome in zip(grid, batched, strict=True):
        alone = suite_correctness(
            model, x, y, attacks=[attack], eps=eps, generator=torch.Generator(), clean=clean
        )[attack.name]
        assert torch.equal(outcome, alone), eps
    assert not torch.equal(batched[1], batched[-1])  # the budgets differ in effect
