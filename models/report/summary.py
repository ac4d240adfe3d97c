"""The first lines of a robustness report: a plain sentence a non-expert can act on, and which
adaptation to serve.

``summary`` states, on the held-out images, how many the model gets right normally and how many
stay right at one headline eps, with Wilson 95% intervals. ``recommendation`` compares the robust
(clean + FGSM) adaptation with the clean-only fine-tune on the same images, by a rule fixed here
(exact sign tests on the paired per-image outcomes, each at 2.5%, 5% for the two together):

1. under attack at the headline eps, one adaptation keeps significantly more images correct:
   serve it;
2. otherwise, one is significantly more accurate on clean images: serve it;
3. otherwise the images cannot tell them apart: keep the robust adaptation (the default; on
   the project's larger measurements, docs/robustness.md, it was at least as robust) and say
   so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from models.core import sign_test_p, wilson_interval
from models.evaluation import SANITY_EPS
from models.report.unavailable import unavailable_summary

# each sign test's level for "measurably different": two tests (under attack, then clean), so
# 0.05 / 2 keeps the chance of a false "serve X" at or below 5% (Bonferroni)
SIGNIFICANCE = 0.025
VARIANT_WORDS = {"robust": "the robust adaptation", "clean_only": "the clean-only fine-tune"}


def headline_eps(grid: Sequence[float], adapt_eps: float) -> float | None:
    """The eps the summary sentence speaks of: the adaptation's own eps when the report measured
    it, else the largest measured eps up to 0.1, else the smallest measured one."""
    measured = sorted(e for e in grid if 0 < e < SANITY_EPS)
    if not measured:
        return None
    if any(math.isclose(e, adapt_eps) for e in measured):
        return next(e for e in measured if math.isclose(e, adapt_eps))
    up_to = [e for e in measured if e <= 0.1 + 1e-9]
    return up_to[-1] if up_to else measured[0]


def outcome(correct: Tensor) -> dict[str, Any]:
    """Correct count, accuracy and Wilson 95% interval of per-image outcomes (bool ``[n]``)."""
    n, successes = len(correct), int(correct.sum())
    low, high = wilson_interval(successes, n)
    return {"correct": successes, "n": n, "accuracy": successes / n, "low": low, "high": high}


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _interval(result: dict[str, Any]) -> str:
    return f"95% interval {100 * result['low']:.0f}-{100 * result['high']:.0f}%"


def summary_text(
    images: str,
    clean: dict[str, Any],
    attacked: dict[str, Any],
    eps: float,
    attacks: tuple[int, int] = (1, 1),
) -> str:
    ran, planned = attacks
    skipped = "" if ran >= planned else f"; {ran} of {planned} attacks ran in the time allowed"
    return (
        f"{images}: {_pct(clean['accuracy'])} correct normally ({_interval(clean)}). If an "
        f"attacker may change every pixel by up to {100 * eps:g}% of the full brightness range "
        f"(eps {eps:g}), about {_pct(attacked['accuracy'])} stayed correct under every attack "
        f"we ran ({_interval(attacked)}{skipped}); a stronger attack could only lower that."
    )


def recommend(
    robust: dict[str, Tensor],
    clean_only: dict[str, Tensor],
    eps: float,
    served: str,
    settings: str = "",
) -> dict[str, Any]:
    """Which adaptation to serve (see the module docstring) from per-image outcomes ``clean``
    and ``attacked`` of each adaptation on the same images; ``settings`` (e.g. ", augment=16
    and steps=40") is what else to send to adapt again as measured."""
    compared = {}
    for kind in ("attacked", "clean"):
        wins = int((robust[kind] & ~clean_only[kind]).sum())
        losses = int((clean_only[kind] & ~robust[kind]).sum())
        compared[kind] = (wins, losses, sign_test_p(wins, losses))
    rates = {
        kind: (robust[kind].double().mean().item(), clean_only[kind].double().mean().item())
        for kind in ("attacked", "clean")
    }
    words = {"attacked": f"under attack at eps {eps:g}", "clean": "normally"}
    figures = {
        kind: f"{words[kind]} {_pct(rates[kind][0])} vs {_pct(rates[kind][1])}"
        for kind in ("attacked", "clean")
    }
    for kind in ("attacked", "clean"):
        wins, losses, p = compared[kind]
        if p < SIGNIFICANCE:
            choice = "robust" if wins > losses else "clean_only"
            other = "attacked" if kind == "clean" else "clean"
            because = (
                f"{VARIANT_WORDS[choice]} got more images right {words[kind]} "
                f"({figures[kind]}, robust vs clean-only; sign test p = {p:.2g}); "
                f"{figures[other]}."
            )
            return _advice(choice, True, because, served, compared, settings)
    because = (
        f"on these images the two adaptations did not differ measurably ({figures['clean']}, "
        f"{figures['attacked']}, robust vs clean-only); more labelled validation images might "
        "tell them apart."
    )
    return _advice("robust", False, because, served, compared, settings)


def _advice(
    choice: str,
    measured: bool,
    because: str,
    served: str,
    compared: dict[str, tuple],
    settings: str,
) -> dict[str, Any]:
    if choice == served:
        action = f"This model already serves {VARIANT_WORDS[choice]}."
    elif measured:
        action = f"Adapt again with adaptation={choice}{settings} to serve {VARIANT_WORDS[choice]}."
    else:
        action = (
            f"This model serves {VARIANT_WORDS[served]}, which these images do not show to be "
            f"worse; when in doubt, adapt again with adaptation=robust{settings}."
        )
    if measured:
        opening = f"Serve {VARIANT_WORDS[choice]}"
    elif choice == served:
        opening = f"Keep {VARIANT_WORDS[choice]} (the default)"
    else:
        opening = "Either adaptation will do"
    return {
        "adaptation": choice,
        "measured_difference": measured,
        "served": served,
        "text": f"{opening}: {because} {action}",
        "paired": {
            kind: {"robust_only": wins, "clean_only_only": losses, "p": p}
            for kind, (wins, losses, p) in compared.items()
        },
    }


def per_image(by_key: dict[tuple[str, float], list[Tensor]], eps: float) -> dict[str, Tensor]:
    """One variant's outcomes over all folds: ``clean`` and ``attacked`` (worst case at eps)."""
    return {
        "clean": torch.cat(by_key[("clean", 0.0)]),
        "attacked": torch.cat(by_key[("worst", eps)]),
    }


def first_lines(
    correct_by: dict[str, dict[tuple[str, float], list[Tensor]]],
    *,
    images: str,
    eps: float | None,
    served: str | None,
    untrusted: str | None,
    attacks: tuple[int, int] = (1, 1),
    settings: str = "",
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The report's ``summary`` and ``recommendation`` (None when there is nothing to compare
    or the figures cannot be trusted). ``served`` names the variant the model serves, or None
    for an evaluation of one model (``correct_by`` then has its one variant)."""
    if untrusted is not None:
        text = f"{images}: these figures cannot be trusted, so none is given. Why: {untrusted}."
        return {"trustworthy": False, "text": text}, None
    primary = correct_by[served] if served is not None else next(iter(correct_by.values()))
    if eps is None:
        clean = outcome(torch.cat(primary[("clean", 0.0)]))
        text = f"{images}: {_pct(clean['accuracy'])} correct normally ({_interval(clean)})."
        return {"trustworthy": True, "text": text, "eps": None, "clean": clean}, None
    outcomes = per_image(primary, eps)
    clean, attacked = outcome(outcomes["clean"]), outcome(outcomes["attacked"])
    summary = {
        "trustworthy": True,
        "text": summary_text(images, clean, attacked, eps, attacks),
        "eps": eps,
        "clean": clean,
        "under_attack": attacked,
    }
    if served is None or set(correct_by) != {"robust", "clean_only"}:
        return summary, None
    variants = {name: per_image(by_key, eps) for name, by_key in correct_by.items()}
    return summary, recommend(variants["robust"], variants["clean_only"], eps, served, settings)


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a model's record shows of its report: the plain sentence, the recommendation, and
    the headline figures (clean and worst-case accuracy per eps, robust vs clean-only)."""
    if not report["available"]:
        return unavailable_summary(report)
    first = {
        "level": report.get("level", "full"),
        "text": report["summary"]["text"],
        "recommendation": report.get("recommendation"),
    }

    def worst(cells: list[dict[str, Any]]) -> dict[str, float]:
        return {f"{c['eps']:g}": round(c["mean"], 4) for c in cells if c["attack"] == "worst"}

    checks = [c for checks in report["checks"].values() for c in checks]
    common = {
        "available": True,
        **first,
        "source": report["source"],
        "examples": report["examples"],
        "sanity_checks_passed": all(c["passed"] for c in checks),
    }
    if report.get("untrusted_reason"):
        return {"trustworthy": False, "reason": report["untrusted_reason"], **common}
    return {
        "trustworthy": True,
        **common,
        "worst_case_accuracy": {
            "robust": worst(report["robust"]),
            "clean_only": worst(report["clean_only"]),
        },
    }
