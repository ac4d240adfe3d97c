"""Small-sample statistics for per-image accuracies: intervals that hold at small n, and the
paired test that says whether two models differ on the same images."""

from __future__ import annotations

import math

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
