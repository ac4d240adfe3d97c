"""Intervals and the paired test behind reports: values from the formulas' published examples."""

import math

import pytest

from models.stats import sign_test_p, wilson_interval


def test_wilson_interval_matches_known_values_and_stays_inside_0_1():
    low, high = wilson_interval(15, 15)  # the normal interval says "100% ± 0"
    assert high == 1.0 and low == pytest.approx(0.796, abs=1e-3)
    low, high = wilson_interval(3, 4)  # the normal interval says "75% ± 42" (past 100%)
    assert (low, high) == (pytest.approx(0.301, abs=1e-3), pytest.approx(0.954, abs=1e-3))
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.278, abs=1e-3)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.404, abs=1e-3), pytest.approx(0.596, abs=1e-3))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_sign_test_is_exact_and_two_sided():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)  # 0.0625: five to none is not enough
    assert sign_test_p(6, 0) == pytest.approx(2 / 64)
    assert sign_test_p(0, 6) == sign_test_p(6, 0)
    assert sign_test_p(3, 3) == 1.0
    assert sign_test_p(10, 2) == pytest.approx(2 * sum(math.comb(12, k) for k in range(3)) / 4096)
