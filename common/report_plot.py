"""The robustness report as a chart (PNG), readable on a phone: the share of held-out images
that stay correct under the worst case of every attack, against the attacker's budget eps, for
the robust (clean + FGSM) adaptation and the clean-only fine-tune, with 95% intervals as bands.

Used by ``GET /v1/models/{id}/report.png`` and ``fewshot report --plot``. Matplotlib's object
API on an Agg canvas: no display, no global pyplot state, safe in the API's threads.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

VARIANTS = {  # report key -> (legend, line style, colour)
    "robust": ("robust adaptation", "-", "#1f6fb4"),
    "clean_only": ("clean-only fine-tune", "--", "#d9711c"),
}
CHART_MAX_EPS = 0.5  # the sanity check's eps (accuracy must reach chance) is left off the chart


def series(cells: list[dict[str, Any]]) -> list[tuple[float, float, float, float]]:
    """(eps, accuracy %, interval low %, interval high %) of the worst case, eps 0 from the
    clean cell; a cell without ``low``/``high`` (older reports) uses mean ± ci95."""
    points = {c["eps"]: c for c in cells if c["attack"] == "worst" and c["eps"] < CHART_MAX_EPS}
    clean = [c for c in cells if c["attack"] == "clean"]
    if clean:
        points[0.0] = clean[0]
    rows = []
    for eps, cell in sorted(points.items()):
        low, high = cell.get("low"), cell.get("high")
        if low is None or high is None:
            low, high = cell["mean"] - cell["ci95"], cell["mean"] + cell["ci95"]
        rows.append((eps, 100 * cell["mean"], 100 * max(low, 0.0), 100 * min(high, 1.0)))
    return rows


def _message(axes: Any, text: str) -> None:
    axes.axis("off")
    axes.text(0.5, 0.5, textwrap.fill(text, 44), ha="center", va="center", fontsize=12)


def report_png(report: dict[str, Any], title: str) -> bytes:
    figure = Figure(figsize=(6, 5.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    summary = report.get("summary") or {}
    if not report.get("available"):
        _message(axes, report.get("reason") or "no robustness estimate for this model")
    elif summary.get("trustworthy") is False:
        _message(axes, f"These figures cannot be trusted: {report.get('untrusted_reason')}")
    else:
        served = report.get("served", "robust")
        measured: set[float] = set()
        # the served adaptation last, on top, where the two lines coincide
        for variant in sorted(VARIANTS, key=lambda name: name == served):
            label, line, colour = VARIANTS[variant]
            points = series(report.get(variant, []))
            if not points:
                continue
            eps, accuracy, low, high = zip(*points, strict=True)
            measured.update(eps)
            label += " (served)" if variant == served else ""
            axes.plot(eps, accuracy, linestyle=line, marker="o", color=colour, label=label, lw=2)
            axes.fill_between(eps, low, high, color=colour, alpha=0.15, linewidth=0)
        axes.set_xticks(sorted(measured), [f"{e:g}" for e in sorted(measured)])
        axes.set_xlabel("attacker's budget eps (share of the brightness range)", fontsize=11)
        axes.set_ylabel("images still correct (%)", fontsize=11)
        axes.set_ylim(0, 100)
        axes.tick_params(labelsize=10)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=10, loc="lower left")
        sentence = summary.get("text") or f"{report.get('examples', 0)} held-out images."
        axes.set_title(
            textwrap.fill(f"{sentence} Lines: worst case over every attack; bands: 95%.", 72),
            fontsize=9,
            loc="left",
        )
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
