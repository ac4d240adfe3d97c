"""The service's robustness report: the suite it names is the suite it ran, the worst case is
per image, the time budget skips attacks and says so."""

from __future__ import annotations

import torch

from models.core import AdaptConfig, FewShotNet, backbone_params
from models.report import robustness_report
from tests.conftest import TINY, synthetic_task

SUITE = "fgsm,pgd-3,apgd-ce-4,apgd-t-4,square-15"


def _report(**options):
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=4)
    task = synthetic_task(4, 3, 0, seed=2)
    return robustness_report(
        TINY,
        backbone_params(model),
        task.x_support,
        task.y_support,
        n_way=4,
        adapt_config=AdaptConfig(steps=3, eps=0.1),
        eps_grid=(0.0, 0.1),
        **options,
    )


def test_the_report_runs_and_names_the_whole_suite_and_the_worst_case_is_per_image():
    report = _report(attacks=SUITE)
    assert report["available"] and report["examples"] == 12 and report["attacks_skipped"] == {}
    assert list(report["threat_model"]["attacks"]) == [*SUITE.split(","), "worst"]
    for variant in ("robust", "clean_only"):
        cells = {(c["attack"], c["eps"]): c for c in report[variant]}
        for eps in (0.1, 0.5):
            by_attack = [cells[(name, eps)]["mean"] for name in SUITE.split(",")]
            assert cells[("worst", eps)]["mean"] <= min(by_attack)
            assert all(cells[(name, eps)]["n"] == 12 for name in SUITE.split(","))
        names = {check["name"] for check in report["checks"][variant]}
        assert {"blackbox_weaker", "iterative_le_fgsm", "chance_at_large_eps"} <= names
    assert set(report["gain"]) == {"0", "0.1", "0.5"}
    # one form of interval per cell: Wilson bounds, no symmetric half-width past 0% or 100%
    for cell in report["robust"] + report["clean_only"]:
        assert "ci95" not in cell, cell
        assert 0.0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1.0, cell


def test_a_spent_time_budget_skips_the_later_attacks_and_says_so():
    report = _report(attacks=SUITE, time_budget_s=0.0)
    assert list(report["threat_model"]["attacks"]) == ["fgsm", "worst"]  # the first always runs
    assert set(report["attacks_skipped"]) == set(SUITE.split(",")[1:])
    assert all("time budget" in reason for reason in report["attacks_skipped"].values())
    cells = {(c["attack"], c["eps"]): c["mean"] for c in report["robust"]}
    assert cells[("worst", 0.1)] == cells[("fgsm", 0.1)]  # worst over what ran, nothing else
    assert ("apgd-ce-4", 0.1) not in cells


def test_an_unavailable_report_still_states_its_threat_model():
    torch.manual_seed(0)
    task = synthetic_task(4, 1, 0, seed=2)
    report = robustness_report(
        TINY,
        backbone_params(FewShotNet(TINY, n_way=4)),
        task.x_support,
        task.y_support,
        n_way=4,
        adapt_config=AdaptConfig(steps=1),
        attacks=SUITE,
    )
    assert not report["available"] and "apgd-t-4" in report["threat_model"]["attacks"]


def test_a_report_at_chance_or_with_a_failed_check_is_not_summarised():
    from models.evaluation import Cell, Check, untrusted_reason

    passed = {"robust": [Check("worst_monotone", True, "")]}
    learned = [Cell("clean", 0.0, 0.9, 0.05, 12)]
    assert untrusted_reason(learned, passed, 4) is None
    at_chance = [Cell("clean", 0.0, 0.25, 0.2, 12)]
    reason = untrusted_reason(at_chance, passed, 4)
    assert "25% (95% interval from 5%), not clearly above chance (25% for 4 classes)" in reason
    wilson = [Cell("clean", 0.0, 0.5, None, 12, low=0.25, high=0.75)]  # its low bound decides
    assert "not clearly above chance" in untrusted_reason(wilson, passed, 4)
    unsure = [Cell("clean", 0.0, 0.3, 0.26, 12)]  # above chance, but not clearly
    assert "not clearly above chance" in untrusted_reason(unsure, passed, 4)
    failed = {"robust": [Check("chance_at_large_eps", False, "0.6 at eps 0.5")]}
    assert "sanity checks failed (chance_at_large_eps)" in untrusted_reason(learned, failed, 4)
    # the tiny model on 12 examples: 42% ± 28% at 4-way is not clearly above chance
    assert "not clearly above chance" in _report(attacks="fgsm,pgd-3")["untrusted_reason"]


def test_progress_goes_step_by_step_through_the_adaptations_and_every_attack_run():
    from models.report import report_units

    calls: list[tuple[int, str]] = []
    _report(attacks="fgsm,pgd-3", on_progress=lambda done, phase: calls.append((done, phase)))
    task = synthetic_task(4, 3, 0, seed=2)
    config, grid = AdaptConfig(steps=3, eps=0.1), (0.0, 0.1)
    total = report_units(task.y_support, 4, 0, "fgsm,pgd-3", config, grid)
    # units are image-passes: 3 folds x (8 images fitted x 3 steps, robust (3 passes a step:
    # FGSM copies) and clean-only (1)), then per fold and variant 4 held-out images x 2 eps
    # (0.1 and the check's 0.5) x (fgsm 1 + pgd-3 3)
    assert total == 3 * (8 * 3 * 3 + 8 * 3 * 1) + 3 * 2 * 4 * 2 * (1 + 3)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total and calls[-1][1] == "writing the report"
    phases = [phase for _, phase in calls]
    assert "measuring robustness: adapting the robust variant, fold 1 of 3, step 2 of 3" in phases
    assert "measuring robustness: adapting the clean-only variant, fold 3 of 3, step 3 of 3" in (
        phases
    )
    attacking = [p for p in phases if "(attack " in p]
    assert len(attacking) == 2 * 3 * 2  # each attack on each adapted model
    assert attacking[-1] == (
        "measuring robustness: pgd-3 (attack 2 of 2) on the clean-only variant, fold 3 of 3"
    )
