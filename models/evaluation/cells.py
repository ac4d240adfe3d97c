"""One figure of an evaluation: accuracy under one attack at one eps, with its interval."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    attack: str  # "clean", an attack's name ("pgd-20", "apgd-t-100", ...), "worst"
    eps: float
    mean: float  # accuracy: mean over episodes, or over examples in a report
    ci95: float  # half-width of the 95% confidence interval of the mean
    n: int  # episodes (episode evaluation) or examples (robustness report) behind the mean
    low: float | None = None  # a report's Wilson 95% interval (per-image accuracies); None for
    high: float | None = None  # episode means, whose interval is mean ± ci95
