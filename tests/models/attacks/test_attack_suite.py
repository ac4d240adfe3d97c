"""The strong attacks (APGD-CE/DLR/T, PGD with restarts, Square) and the suite that runs them:
budgets and ranges, known strength orderings, reproducibility, names, worst case."""

from __future__ import annotations

import copy

import pytest
import torch

from models.attacks import (
    apgd,
    apgd_targeted,
    checkpoints,
    dlr_loss,
    fgsm_rs,
    parse_attack,
    parse_attacks,
    pgd,
    pgd_restarts,
    runnable,
    square,
    suite_correctness,
    target_classes,
    window_fraction,
)
from models.core import ConfigError

ALL = "fgsm,pgd-10,pgd-10x3,apgd-ce-10,apgd-dlr-10,apgd-t-10,square-300"


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ALL.split(","))
@pytest.mark.parametrize("eps", [0.03, 0.1])
def test_every_attack_stays_in_budget_and_range_and_leaves_the_model_alone(trained, name, eps):
    model, x, y = trained
    before = copy.deepcopy(model.state_dict())
    x_adv = parse_attack(name)(model, x, y, eps=eps, generator=_gen())
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-12
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_fgsm_with_random_start_stays_in_budget(trained):
    model, x, y = trained
    x_adv = fgsm_rs(model, x, y, eps=0.1, generator=_gen())
    assert (x_adv - x).abs().max() <= 0.1 + 1e-12 and not torch.equal(x_adv, x)


def test_apgd_is_at_least_as_strong_as_pgd_on_the_same_budget(trained):
    """Croce & Hein's claim, on a model where neither attack reaches 0: accuracy and loss."""
    model, x, y = trained
    by_pgd = pgd(model, x, y, eps=0.1, steps=10, generator=_gen())
    by_apgd = apgd(model, x, y, eps=0.1, steps=10, generator=_gen())
    pgd_accuracy, apgd_accuracy = _accuracy(model, by_pgd, y), _accuracy(model, by_apgd, y)
    assert 0.5 < pgd_accuracy < 1.0  # the comparison means something here
    assert apgd_accuracy <= pgd_accuracy


def test_restarts_and_targets_never_weaken_an_attack(trained):
    model, x, y = trained
    one = _accuracy(
        model, pgd_restarts(model, x, y, eps=0.1, steps=10, restarts=1, generator=_gen()), y
    )
    three = _accuracy(
        model, pgd_restarts(model, x, y, eps=0.1, steps=10, restarts=3, generator=_gen()), y
    )
    assert three <= one < 1.0
    one_target = apgd_targeted(model, x, y, eps=0.1, steps=10, targets=1, generator=_gen())
    all_targets = apgd_targeted(model, x, y, eps=0.1, steps=10, targets=3, generator=_gen())
    assert _accuracy(model, all_targets, y) <= _accuracy(model, one_target, y)


@pytest.mark.parametrize("name", ALL.split(","))
def test_every_attack_takes_accuracy_to_zero_at_eps_half(trained, name):
    model, x, y = trained
    assert _accuracy(model, x, y) >= 0.9
    x_adv = parse_attack(name)(model, x, y, eps=0.5, generator=_gen())
    assert _accuracy(model, x_adv, y) == 0.0


def test_square_is_black_box_and_weaker_than_white_box_on_a_small_budget(trained):
    """Square reads only logits: under torch.no_grad it still works; on few queries it leaves
    more standing than APGD (the property the gradient-masking check relies on)."""
    model, x, y = trained
    with torch.no_grad():
        x_square = square(model, x, y, eps=0.1, queries=100, generator=_gen())
    x_white = apgd(model, x, y, eps=0.1, steps=10, generator=_gen())
    assert _accuracy(model, x_square, y) >= _accuracy(model, x_white, y)
    assert window_fraction(0, 1000) == 0.8 and window_fraction(999, 1000) < window_fraction(0, 1000)


def test_attacks_are_reproducible_with_a_seeded_generator(trained):
    model, x, y = trained
    for name in ("pgd-10x3", "apgd-ce-10", "apgd-t-10", "square-50"):
        attack = parse_attack(name)
        first = attack(model, x, y, eps=0.1, generator=_gen(3))
        assert torch.equal(first, attack(model, x, y, eps=0.1, generator=_gen(3))), name


def test_dlr_loss_is_invariant_to_logit_scale_and_shift():
    logits = torch.tensor([[3.0, 1.0, 0.5, -1.0], [0.2, 2.0, 1.0, 0.0]])
    y = torch.tensor([0, 0])
    loss = dlr_loss(logits, y)
    assert torch.allclose(dlr_loss(7 * logits + 2, y), loss)
    assert loss[0] < 0 < loss[1]  # correct with a margin, wrong: the sign says which


def test_apgd_checkpoints_and_targets():
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]  # p_j of the paper x 100
    logits = torch.tensor([[0.0, 5.0, 1.0, 3.0]])
    first, second, third = target_classes(logits, torch.tensor([1]), 9)
    assert (first.item(), second.item(), third.item()) == (3, 2, 0)


def test_names_parse_and_bad_names_are_clear_errors():
    assert [a.name for a in parse_attacks(" fgsm, PGD-20x1 ,pgd-100x5,apgd-t-100,square-1000")] == [
        "fgsm",
        "pgd-20",
        "pgd-100x5",
        "apgd-t-100",
        "square-1000",
    ]
    assert parse_attack("pgd-100x5").restarts == 5 and not parse_attack("square-9").white_box
    assert len(parse_attacks("fgsm,fgsm,pgd-2")) == 2
    for bad in ("cw-100", "pgd", "pgd-0", "apgd-ce-x", "square-99999", "pgd-2x0", ""):
        with pytest.raises(ConfigError):
            parse_attacks(bad)
    kept, skipped = runnable(parse_attacks("apgd-ce-5,apgd-dlr-5,apgd-t-5"), 3)
    assert [a.name for a in kept] == ["apgd-ce-5", "apgd-dlr-5"] and list(skipped) == ["apgd-t-5"]


def test_a_3_way_suite_keeps_a_dlr_attack_in_place_of_apgd_t():
    kept, skipped = runnable(parse_attacks("apgd-ce-100,apgd-t-100,square-10"), 3)
    assert [a.name for a in kept] == ["apgd-ce-100", "apgd-dlr-100", "square-10"]
    assert skipped["apgd-t-100"].endswith("apgd-dlr-100 runs in its place")
    kept, skipped = runnable(parse_attacks("apgd-ce-100,apgd-t-100"), 2)  # no DLR on 2 classes
    assert [a.name for a in kept] == ["apgd-ce-100"] and "in its place" not in skipped["apgd-t-100"]
    kept, _ = runnable(parse_attacks("apgd-t-100"), 5)
    assert [a.name for a in kept] == ["apgd-t-100"]


def test_suite_worst_case_is_per_image_and_wrong_clean_images_are_not_attacked(trained):
    model, x, y = trained
    flipped = y.clone()
    flipped[:5] = (y[:5] + 1) % 4  # five images the model now gets "wrong" clean
    results = suite_correctness(
        model, x, flipped, attacks=parse_attacks(ALL), eps=0.1, generator=_gen()
    )
    assert not results["worst"][:5].any() and not results["fgsm"][:5].any()
    every = torch.stack([results[a.name] for a in parse_attacks(ALL)]).all(0)
    assert torch.equal(results["worst"], every)
    white = torch.stack([results[a.name] for a in parse_attacks(ALL) if a.white_box]).all(0)
    assert torch.equal(results["white-box"], white)
    assert results["worst"].sum() < results["apgd-ce-10"].sum()  # the union finds more
