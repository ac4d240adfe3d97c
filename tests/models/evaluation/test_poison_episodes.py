"""Poisoning measured on episodes: the victim's queries are the evaluation's, the poisoned
support set reaches the victim, the sanity checks fail when they should, the journal resumes."""

from __future__ import annotations

import pytest
import torch

from models.core import AdaptConfig, FewShotNet, backbone_params
from models.data import EpisodeSampler
from models.evaluation import (
    JournalMismatch,
    PoisonAttack,
    PoisonPlan,
    evaluate_poisoning,
    poisoning_checks,
)
from tests.conftest import TINY
from tests.models.evaluation.test_evaluation import _synthetic_classes


class Stop(Exception):
    pass


def _plan(attack: PoisonAttack, adapt_config: AdaptConfig | None = None) -> PoisonPlan:
    torch.manual_seed(0)
    sampler = EpisodeSampler(_synthetic_classes(6), way=3, shot=1, query=4, seed=0)
    return PoisonPlan(
        TINY,
        backbone_params(FewShotNet(TINY, n_way=3)),
        sampler,
        2,
        adapt_config or AdaptConfig(steps=2, eps=0.1, augment=1),  # random draws: seeds matter
        "proto",
        attack,
    )


QUICK = PoisonAttack(eps_grid=(0.1,), steps=2, more_steps=3, more_steps_every=2)


def test_the_victims_queries_are_the_evaluations_and_the_surrogate_set_is_apart():
    plan = _plan(QUICK)
    task = plan.sampler.episode(1)
    x_victim, y_victim, x_surrogate, y_surrogate = plan.split(task)
    evaluation = EpisodeSampler(_synthetic_classes(6), way=3, shot=1, query=2, seed=0).episode(1)
    assert torch.equal(x_victim, evaluation.x_query) and torch.equal(y_victim, evaluation.y_query)
    assert torch.equal(task.x_support, evaluation.x_support)
    assert len(x_surrogate) == 6 and y_surrogate.tolist() == [0, 0, 1, 1, 2, 2]
    assert not any(torch.equal(a, b) for a in x_surrogate for b in x_victim)


def test_the_poisoned_support_set_reaches_the_victim():
    """The oracle attack on the clean-only fine-tune (smooth, so it demonstrably works): the
    victim's accuracy falls; noise of the same budget does less; eps 0 is the clean figure."""
    attack = PoisonAttack(eps_grid=(0.2,), steps=8, more_steps_every=0, objective="oracle")
    result = evaluate_poisoning(
        _plan(attack, AdaptConfig(steps=5, lr=0.2, adversarial=False)), episodes=3
    )
    clean, poisoned = result.cell("clean", 0.0).mean, result.cell("poisoned", 0.2).mean
    assert clean >= 0.8 and poisoned <= clean - 0.3, (clean, poisoned)
    assert result.cell("random", 0.2).mean > poisoned
    assert result.cell("poisoned", 0.0).mean == clean
    assert result.cell("attacker-poisoned", 0.2).mean <= result.cell("attacker-clean", 0.2).mean
    assert result.trusted, result.checks


def test_a_resumed_poisoning_evaluation_gives_the_figures_of_an_uninterrupted_one(tmp_path):
    straight = evaluate_poisoning(_plan(QUICK), episodes=3)
    assert straight.checks[0].name == "zero_budget_is_clean" and straight.checks[0].passed
    assert {c.name for c in straight.checks} == {
        "zero_budget_is_clean",
        "random_not_stronger@0.1",
        "more_steps_not_weaker@0.1",
        "poisoned_monotone",
    }
    assert straight.cell("poisoned-more", 0.1).n == 2  # episodes 0 and 2

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Stop

    journal = tmp_path / "poison.jsonl"
    with pytest.raises(Stop):
        evaluate_poisoning(
            _plan(QUICK), episodes=3, journal_path=journal, on_episode=stop_after_two
        )
    assert len(journal.read_text().splitlines()) == 1 + 2
    resumed = evaluate_poisoning(_plan(QUICK), episodes=3, journal_path=journal)
    assert resumed.cells == straight.cells and resumed.paired == straight.paired
    other = PoisonAttack(eps_grid=(0.1,), steps=3, more_steps=4, more_steps_every=2)
    with pytest.raises(JournalMismatch):
        evaluate_poisoning(_plan(other), episodes=3, journal_path=journal)


def _episode(index: int, clean: float, zero: float, random: float, poisoned: float, **more):
    rows = [["clean", 0.0, clean], ["poisoned", 0.0, zero], ["poisoned", 0.1, poisoned]]
    rows.append(["random", 0.1, random])
    rows += [["poisoned-more", 0.1, value] for value in more.values()]
    return {"index": index, "accuracy": rows, "blackbox": []}


def test_the_poisoning_checks_fail_when_they_should():
    good = [_episode(i, 0.9, 0.9, 0.85, 0.5 + 0.01 * i, more=0.45) for i in range(4)]
    assert all(check.passed for check in poisoning_checks(good))
    bad = [_episode(i, 0.9, 0.8, 0.3 + 0.01 * i, 0.6, more=0.95) for i in range(4)]
    failed = {check.name for check in poisoning_checks(bad) if not check.passed}
    assert failed == {
        "zero_budget_is_clean",  # eps 0 is not the clean figure
        "random_not_stronger@0.1",  # noise beat the attack
        "more_steps_not_weaker@0.1",  # more steps did worse
    }
    rising = [_episode(i, 0.9, 0.9, 0.95, 0.95) for i in range(2)]
    failed = {check.name for check in poisoning_checks(rising) if not check.passed}
    assert failed == {"poisoned_monotone"}
