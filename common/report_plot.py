"""The robustness report as a chart (PNG), readable on a phone: the share of held-out images
that stay correct under the worst case of every attack, against the attacker's budget eps, for
the robust (clean + FGSM) adaptation and the clean-only fine-tune, with 95% intervals as bands.
A report without figures (none asked for, pending, unavailable, untrusted) is a small image
holding its sentence, not an empty chart.

Every font is sized relative to the figure's width: shown ``PHONE_PX`` wide (a phone's screen),
the smallest text is ``MIN_TEXT_PX`` high. The PNG's ``Title`` text chunk holds the title.

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
WIDTH_IN, DPI = 5.0, 120  # 600 px wide
PHONE_PX = 375  # the narrowest width the chart is shown at
MIN_TEXT_PX = 12.0  # the smallest text's height (px) when shown PHONE_PX wide


def font_pt(px_on_phone: float) -> float:
    """The font size (points) whose text is ``px_on_phone`` high when the chart is shown
    ``PHONE_PX`` wide, whatever the figure's own pixel size."""
    return px_on_phone * WIDTH_IN * 72 / PHONE_PX


SMALL, LARGE = font_pt(MIN_TEXT_PX), font_pt(15)
WRAP = 46  # characters per line of SMALL text across the figure


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


def without_figures(report: dict[str, Any]) -> str | None:
    """The sentence a report without figures to draw shows instead; None when it has them."""
    if not report.get("available"):
        summary = report.get("summary") or {}
        return report.get("reason") or summary.get("text") or "no robustness estimate"
    if (report.get("summary") or {}).get("trustworthy") is False:
        return f"These figures cannot be trusted: {report.get('untrusted_reason')}"
    return None


def report_figure(report: dict[str, Any], title: str) -> Figure:
    """The chart of ``report`` (a small figure with its sentence when it has no figures)."""
    heading = textwrap.fill(title, 36)
    message = without_figures(report)
    if message is not None:
        return _message_figure(heading, textwrap.fill(message, WRAP))
    figure = Figure(figsize=(WIDTH_IN, 5.6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
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
    axes.set_xlabel("attacker's budget eps\n(share of the brightness range)", fontsize=SMALL)
    axes.set_ylabel("images still correct (%)", fontsize=SMALL)
    axes.set_ylim(0, 100)
    axes.tick_params(labelsize=SMALL)
    axes.grid(alpha=0.3)
    examples = report.get("examples", 0)
    axes.set_title(
        f"worst case over every attack, 95% bands\n{examples} held-out images", fontsize=SMALL
    )
    handles, labels = axes.get_legend_handles_labels()  # the served one first
    figure.legend(handles[::-1], labels[::-1], fontsize=SMALL, loc="outside lower center")
    figure.suptitle(heading, fontsize=LARGE, fontweight="bold")
    return figure


def _message_figure(heading: str, message: str) -> Figure:
    """A figure just tall enough for its heading and sentence."""
    pad, gap = 0.15, 0.12  # inches
    heading_in = (heading.count("\n") + 1) * LARGE * 1.3 / 72
    message_in = (message.count("\n") + 1) * SMALL * 1.45 / 72
    height = 2 * pad + heading_in + gap + message_in
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    figure.text(
        0.5, 1 - pad / height, heading, ha="center", va="top", fontsize=LARGE, weight="bold"
    )
    top = 1 - (pad + heading_in + gap) / height
    figure.text(0.5, top, message, ha="center", va="top", fontsize=SMALL, linespacing=1.35)
    return figure


def report_png(report: dict[str, Any], title: str) -> bytes:
    """The chart of ``report`` as PNG bytes, titled ``title`` (a model's name, or its id)."""
    figure = report_figure(report, title)
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Title": title, "Software": None})
    return buffer.getvalue()
