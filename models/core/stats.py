"""Small-sample statistics for per-image accuracies: intervals that hold at small n, and the
paired test that says whether two models differ on the same images."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959964  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) of a binomial proportion: stays inside [0, 1] and
    keeps its coverage near 95% at small n, unlike ``p ± 1.96 sqrt(p(1-p)/n)`` (which gives
    "100% ± 0" on 15 of 15). ``(nan, nan)`` when n is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # exact at the edges: all or none correct leaves the interval touching 1 or 0
    return (0.0 if successes == 0 else low), (1.0 if successes == n else high)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (McNemar's exact test) on paired outcomes: ``wins`` images
    only the first model got right, ``losses`` only the second. 1.0 when there are none."""
    if wins < 0 or losses < 0:
        raise ValueError("counts must be >= 0")
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def t_quantile_95(df: int) -> float:
    """Two-sided 95% quantile of Student's t with ``df`` degrees of freedom, by the
    Cornish-Fisher expansion around the normal one (Abramowitz & Stegun 26.7.5): within 0.01 of
    the exact value for df >= 4, within 0.001 for df >= 10."""
    if df < 1:
        raise ValueError(f"need df >= 1, got {df}")
    z = Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def paired_interval(differences: list[float]) -> tuple[float, float]:
    """Mean of per-pair differences and the half-width of its 95% t interval (nan for fewer
    than 2 pairs): two models on the same episodes."""
    n = len(differences)
    if n < 2:
        return (differences[0] if differences else math.nan), math.nan
    mean = sum(differences) / n
    variance = sum((d - mean) ** 2 for d in differences) / (n - 1)
    return mean, t_quantile_95(n - 1) * math.sqrt(variance / n)


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (1.96 standard errors)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)
