"""Intervals and the paired test behind reports: values from the formulas' published examples."""

import math

import pytest

from models.core import paired_interval, sign_test_p, t_quantile_95, wilson_interval


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


def test_t_quantile_matches_tables():
    # Student's t, two-sided 95%: standard table values
    for df, exact, tolerance in ((4, 2.7764, 0.01), (10, 2.2281, 0.001), (59, 2.0010, 0.0005)):
        assert abs(t_quantile_95(df) - exact) < tolerance, df
    assert abs(t_quantile_95(10**6) - 1.96) < 1e-3
    with pytest.raises(ValueError):
        t_quantile_95(0)


def test_paired_interval():
    mean, half = paired_interval([0.1, 0.3, 0.2, 0.2])  # sd 0.0816, n 4, t(3) ~ 3.18
    assert mean == pytest.approx(0.2)
    assert half == pytest.approx(3.182 * 0.08165 / 2, rel=0.03)
    assert paired_interval([0.5])[0] == 0.5 and math.isnan(paired_interval([0.5])[1])
    assert paired_interval([0.2, 0.2, 0.2]) == (pytest.approx(0.2), pytest.approx(0.0, abs=1e-12))
