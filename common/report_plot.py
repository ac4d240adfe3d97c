"""The robustness report as a chart (PNG): accuracy against eps for each attack, the robust
(clean + FGSM) adaptation beside the clean-only fine-tune, 95% confidence intervals as bars.

Used by ``GET /v1/models/{id}/report.png`` and ``fewshot report --plot``. Matplotlib's object
API on an Agg canvas: no display, no global pyplot state, safe in the API's threads.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ATTACK_STYLES = {"worst": ("worst case over every attack", "^")}
VARIANT_STYLES = {"robust": ("robust adaptation", "-"), "clean_only": ("clean-only", ":")}


def series(cells: list[dict[str, Any]], attack: str) -> list[tuple[float, float, float]]:
    """(eps, accuracy %, 95% CI %) of one attack, eps 0 taken from the clean cell."""
    points = {c["eps"]: c for c in cells if c["attack"] == attack}
    clean = [c for c in cells if c["attack"] == "clean"]
    if clean and 0.0 not in points:
        points[0.0] = clean[0]
    return [(eps, 100 * c["mean"], 100 * c["ci95"]) for eps, c in sorted(points.items())]


def report_png(report: dict[str, Any], title: str) -> bytes:
    figure = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if not report.get("available"):
        axes.axis("off")
        reason = report.get("reason") or "no robustness estimate for this model"
        axes.text(0.5, 0.5, textwrap.fill(reason, 60), ha="center", va="center", wrap=True)
    else:
        for variant, (variant_label, line) in VARIANT_STYLES.items():
            for attack, (attack_label, marker) in ATTACK_STYLES.items():
                points = series(report.get(variant, []), attack)
                if not points:
                    continue
                eps, accuracy, ci = zip(*points, strict=True)
                axes.errorbar(
                    eps,
                    accuracy,
                    yerr=ci,
                    capsize=2,
                    linestyle=line,
                    marker=marker,
                    markersize=3,
                    label=f"{attack_label}, {variant_label}",
                )
        axes.set_xlabel("L-inf budget eps (pixels in [0, 1])")
        axes.set_ylabel("accuracy (%)")
        axes.set_ylim(0, 100)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        source = f"{report.get('examples', 0)} examples, {report.get('source', '')}"
        axes.set_title(textwrap.shorten(source, 90), fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
