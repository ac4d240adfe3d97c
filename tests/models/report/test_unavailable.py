"""The unavailable report: one shape whether nothing was measured, the report is pending, or
its job ended before it; and the summary a model's record shows of it."""

from __future__ import annotations

import json

from models.attacks import parse_attacks
from models.core import AdaptConfig
from models.report import report_summary, unavailable_report, unfinished_report


def _pending() -> dict:
    text = "The full robustness report is being computed by job job_1."
    suite = parse_attacks("fgsm,pgd-2")
    report = unavailable_report(text, (0.0, 0.1), suite, AdaptConfig(steps=1), text=text)
    return report | {"pending": True, "level": "full"}


def test_an_unavailable_report_says_why_and_what_it_would_have_measured():
    report = unavailable_report("one shot", (0.0,), parse_attacks("fgsm"), AdaptConfig(steps=1))
    assert report["summary"] == {"trustworthy": None, "text": "No robustness estimate: one shot"}
    assert (report["available"], report["examples"], report["source"]) == (False, 0, None)
    assert report["threat_model"]["eps_grid"] == [0.0] and report["adapt"]["steps"] == 1
    assert list(report) == [  # the order its JSON has always had
        "summary",
        "recommendation",
        "threat_model",
        "adapt",
        "available",
        "source",
        "examples",
        "reason",
    ]


def test_a_pending_reports_summary_says_it_is_pending():
    pending = _pending()
    summary = report_summary(pending)
    assert summary["pending"] is True and summary["level"] == "full"
    assert summary["reason"] == summary["text"] == pending["summary"]["text"]


def test_an_unfinished_report_keeps_the_pending_ones_description_and_says_why():
    pending = _pending()
    report, summary = unfinished_report("its job was cancelled", json.dumps(pending).encode())
    assert "pending" not in report and "pending" not in summary
    assert report["threat_model"] == pending["threat_model"] and report["level"] == "full"
    assert report["reason"] == summary["reason"] == "its job was cancelled"
    assert list(report) == [k for k in pending if k != "pending"]  # its fields' order kept
    assert summary["level"] == "full"
    _, unknown = unfinished_report("its job is gone", None)
    assert "level" not in unknown  # not said when nothing says it
