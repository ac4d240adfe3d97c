"""Report charts are real PNGs, for available and unavailable reports alike."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from common.report_plot import report_png, series


def cells(scale: float) -> list[dict]:
    made = [{"attack": "clean", "eps": 0.0, "mean": 0.9, "ci95": 0.02, "n": 25}]
    for eps in (0.05, 0.1, 0.2):
        for attack in ("fgsm", "pgd-20", "apgd-ce-100", "worst"):
            made.append(
                {"attack": attack, "eps": eps, "mean": scale / (1 + 10 * eps), "ci95": 0.05}
            )
    return made


def test_an_available_report_draws_every_series():
    report = {"available": True, "robust": cells(0.9), "clean_only": cells(0.5), "examples": 25}
    image = Image.open(io.BytesIO(report_png(report, title="model m")))
    assert image.format == "PNG" and image.size == (770, 495)
    assert np.asarray(image.convert("L")).std() > 10  # something is drawn
    assert series(report["robust"], "worst")[0] == (0.0, 90.0, 2.0)  # eps 0 from the clean cell


def test_an_unavailable_report_says_why():
    png = report_png({"available": False, "reason": "one shot per class"}, title="model m")
    assert Image.open(io.BytesIO(png)).format == "PNG"
