"""The robustness report of one adapted model (attacks over folds, summary, recommendation), and
one deployed model's accuracy under attack on labelled images (an evaluation job)."""

from models.report.attacks import every_eps
from models.report.cost import adaptation_step_cost
from models.report.labelled import accuracy_under_attack, evaluation_units
from models.report.robustness import (
    folds_of,
    report_units,
    robustness_report,
    unavailable_report,
)
from models.report.summary import first_lines, headline_eps, recommend, report_summary
from models.report.unavailable import unfinished_report
from models.report.words import plural

__all__ = [
    "accuracy_under_attack",
    "adaptation_step_cost",
    "evaluation_units",
    "every_eps",
    "first_lines",
    "folds_of",
    "headline_eps",
    "plural",
    "recommend",
    "report_summary",
    "report_units",
    "robustness_report",
    "unavailable_report",
    "unfinished_report",
]
