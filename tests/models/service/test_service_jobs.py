"""The typed settings of the service's jobs: one definition, checked, the same on both sides."""

from __future__ import annotations

import json

import pytest

from models.core import ConfigError
from models.service import (
    REPORT_ATTACKS,
    REPORT_EPS_GRID,
    AdaptJob,
    EvaluateJob,
    report_suite,
)


def test_settings_round_trip_through_the_job_record():
    adapt = AdaptJob(steps=7, lr=0.05, eps=0.2)
    assert AdaptJob.from_json(adapt.to_json()) == adapt
    assert json.loads(adapt.to_json())["eps_grid"] == list(REPORT_EPS_GRID)
    assert adapt.adapt_config.steps == 7 and adapt.adapt_config.eps == 0.2
    evaluate = EvaluateJob()
    assert EvaluateJob.from_json(evaluate.to_json()) == evaluate
    assert evaluate.attacks == REPORT_ATTACKS
    assert {"apgd-ce-100", "apgd-t-100", "square-1000"} <= set(REPORT_ATTACKS)
    older = '{"steps": 3, "lr": 0.1, "eps": 0.1, "eps_grid": [0.0, 0.1], "pgd_steps": 2}'
    restored = AdaptJob.from_json(older)  # records written before the attack suite
    assert restored.eps_grid == (0.0, 0.1) and restored.attacks == ("fgsm", "pgd-2")


@pytest.mark.parametrize(
    "bad",
    [
        {"lr": 2.0},
        {"lr": 0.0},
        {"steps": -1},
        {"eps": 1.5},
        {"eps_grid": ()},
        {"eps_grid": (0.1, 2.0)},
        {"attacks": ()},
        {"attacks": ("pgd-0",)},
        {"attacks": ("cw-100",)},
        {"time_budget_s": 0},
    ],
)
def test_out_of_bounds_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        AdaptJob(**bad)


def test_the_operators_report_suite_is_checked():
    assert report_suite("  ") == REPORT_ATTACKS
    assert report_suite("fgsm, PGD-3x1,apgd-t-5") == ("fgsm", "pgd-3", "apgd-t-5")
    with pytest.raises(ConfigError, match="unknown attack 'cw-9'"):
        report_suite("fgsm,cw-9")
