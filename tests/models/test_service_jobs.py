"""The typed settings of the service's jobs: one definition, checked, the same on both sides."""

from __future__ import annotations

import json

import pytest

from models.config import ConfigError
from models.service_jobs import REPORT_EPS_GRID, REPORT_PGD_STEPS, AdaptJob, EvaluateJob


def test_settings_round_trip_through_the_job_record():
    adapt = AdaptJob(steps=7, lr=0.05, eps=0.2)
    assert AdaptJob.from_json(adapt.to_json()) == adapt
    assert json.loads(adapt.to_json())["eps_grid"] == list(REPORT_EPS_GRID)
    assert adapt.adapt_config.steps == 7 and adapt.adapt_config.eps == 0.2
    evaluate = EvaluateJob()
    assert EvaluateJob.from_json(evaluate.to_json()) == evaluate
    assert evaluate.pgd_steps == REPORT_PGD_STEPS
    older = '{"steps": 3, "lr": 0.1, "eps": 0.1, "eps_grid": [0.0, 0.1], "pgd_steps": 2}'
    assert AdaptJob.from_json(older).eps_grid == (0.0, 0.1)  # records written before


@pytest.mark.parametrize(
    "bad",
    [
        {"lr": 2.0},
        {"lr": 0.0},
        {"steps": -1},
        {"eps": 1.5},
        {"eps_grid": ()},
        {"eps_grid": (0.1, 2.0)},
        {"pgd_steps": 0},
    ],
)
def test_out_of_bounds_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        AdaptJob(**bad)
