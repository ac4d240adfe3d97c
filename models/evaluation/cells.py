"""One figure of an evaluation: accuracy under one attack at one eps, with its interval; and
how episodes' accuracies gather into such figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.core import mean_ci95


@dataclass(frozen=True)
class Cell:
    attack: str  # "clean", an attack's name ("pgd-20", "apgd-t-100", ...), "worst"
    eps: float
    mean: float  # accuracy: mean over episodes, or over examples in a report
    # one form of 95% interval per cell: episode means carry ``ci95`` (the half-width of
    # mean ± ci95); a report's per-image accuracies carry Wilson bounds ``low`` and ``high``
    # (asymmetric, inside [0, 1] at small n) and no ``ci95``
    ci95: float | None
    n: int  # episodes (episode evaluation) or examples (robustness report) behind the mean
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The cell as a report states it: its one form of interval, no null fields."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class EpisodeTally:
    """Episodes' results (:func:`attack_episode`) gathered into cells and black-box pairs."""

    per_cell: dict[tuple[str, float], list[float]] = field(default_factory=dict)
    paired: dict[float, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, episode: dict[str, list]) -> None:
        for attack, eps, accuracy in episode["accuracy"]:
            self.per_cell.setdefault((attack, eps), []).append(accuracy)
        for eps, black_accuracy, white in episode["blackbox"]:
            self.paired.setdefault(eps, []).append((black_accuracy, white))

    def cells(self) -> list[Cell]:
        """Mean and 95% CI over episodes per (attack, eps), sorted by eps then attack."""
        ordered = sorted(self.per_cell.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        return [
            Cell(attack, eps, *mean_ci95(values), len(values)) for (attack, eps), values in ordered
        ]

    def pairs(self) -> list[tuple[float, float, float]]:
        """``(eps, black-box accuracy, white-box worst)`` means over the black-box episodes."""
        return [
            (eps, sum(b for b, _ in rows) / len(rows), sum(w for _, w in rows) / len(rows))
            for eps, rows in sorted(self.paired.items())
        ]

    @property
    def blackbox_episodes(self) -> int:
        return len(self.paired.get(0.0, []))
