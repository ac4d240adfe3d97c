"""Report charts are real PNGs: the worst case of both adaptations with interval bands, and a
plain message for unavailable or untrusted reports."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from PIL import Image

from common.report_plot import VARIANTS, report_figure, report_png, series


def cells(scale: float) -> list[dict]:
    made = [
        {"attack": "clean", "eps": 0.0, "mean": 0.9, "ci95": 0.1, "n": 25, "low": 0.7, "high": 1.0}
    ]
    for eps in (0.05, 0.1, 0.2, 0.5):
        for attack in ("fgsm", "pgd-20", "apgd-ce-100", "worst"):
            mean = scale / (1 + 10 * eps)
            made.append({"attack": attack, "eps": eps, "mean": mean, "ci95": 0.05})
    return made


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 600 and image.info["Title"] == "model m"
    return np.asarray(image.convert("RGB")).astype(int)


def _smallest_text_on_a_phone(figure) -> float:
    """The smallest text's height (px) when the chart is shown 375 px wide."""
    FigureCanvasAgg(figure)
    figure.canvas.draw()
    width_px = figure.get_figwidth() * figure.dpi
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    assert sizes
    return min(sizes) * figure.dpi / 72 * 375 / width_px


def test_every_text_is_readable_when_the_chart_is_shown_375_px_wide():
    report = {"available": True, "robust": cells(0.9), "clean_only": cells(0.5), "examples": 25}
    assert _smallest_text_on_a_phone(report_figure(report, "m")) >= 11
    unavailable = {"available": False, "reason": "none was asked for (report=none)"}
    figure = report_figure(unavailable, "m")
    assert _smallest_text_on_a_phone(figure) >= 11
    assert figure.get_figheight() < report_figure(report, "m").get_figheight() / 2  # no blank


def _has_colour(pixels: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(pixels - rgb).sum(-1) < 30).sum() > 50)


def test_an_available_report_draws_both_adaptations_worst_case_with_bands():
    report = {"available": True, "robust": cells(0.9), "clean_only": cells(0.5), "examples": 25}
    pixels = _pixels(report_png(report, title="model m"))
    assert all(_has_colour(pixels, colour) for _, _, colour in VARIANTS.values())
    points = series(report["robust"])
    assert points[0] == (0.0, 90.0, 70.0, 100.0)  # eps 0 from the clean cell, Wilson bounds
    assert [p[0] for p in points] == [0.0, 0.05, 0.1, 0.2]  # the sanity eps 0.5 is left off
    assert points[2][2:] == pytest.approx((45 - 5, 45 + 5))  # older cells: mean ± ci95


def test_unavailable_and_untrusted_reports_draw_a_message_not_figures():
    for report in (
        {"available": False, "reason": "one shot per class"},
        {
            "available": True,
            "robust": cells(0.9),
            "clean_only": cells(0.5),
            "summary": {"trustworthy": False},
            "untrusted_reason": "sanity checks failed",
        },
    ):
        pixels = _pixels(report_png(report, title="model m"))
        assert not any(_has_colour(pixels, colour) for _, _, colour in VARIANTS.values())
