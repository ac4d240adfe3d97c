"""Tables and an accuracy-vs-eps plot from `fewshot evaluate --output` JSON files.

Usage: python benchmarks/robustness_report.py RESULTS_DIR [--plot docs/robustness.png]
RESULTS_DIR holds files named ALGO_SHOTshot_ADAPTATION.json (e.g. adml_1shot_adversarial.json)
written by `fewshot evaluate`. Prints one markdown table per file (mean and 95% CI per attack
and eps, and the sanity checks) and draws the worst-case accuracy against eps per model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.evaluation import SANITY_EPS


def load(results: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(results.glob("*.json"))}


def attacks_of(result: dict) -> list[str]:
    """The attack columns of a result (files written before the suite used fgsm and pgd)."""
    columns = list(result.get("attacks") or ["fgsm", "pgd"])
    return columns + ([result["blackbox"]] if result.get("blackbox") else [])


def describe(result: dict) -> str:
    adapt = result["adapt"]
    suite = ", ".join(result.get("attacks") or [f"FGSM, PGD-{result.get('pgd_steps')}"])
    black = result.get("blackbox")
    return (
        f"{result['way']}-way {result['shot']}-shot, {result['episodes']} episodes, "
        f"{result['query']} queries/class, adaptation {adapt['steps']} steps "
        f"{'clean+FGSM' if adapt['adversarial'] else 'clean only'} (eps {adapt['eps']})"
        + (
            f" on the support set and {adapt['augment']} affine copies"
            if adapt.get("augment")
            else ""
        )
        + "; "
        f"worst case over {suite}"
        + (f"; black-box {black} on {result['blackbox_episodes']} episodes" if black else "")
    )


def table(name: str, result: dict) -> str:
    cells = {(c["attack"], c["eps"]): c for c in result["cells"]}
    grid = sorted({eps for _, eps in cells if eps <= 0.2})
    columns = attacks_of(result)
    lines = [
        f"**{name}**: {describe(result)}",
        "",
        "| eps | clean | " + " | ".join(columns) + " | worst case |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for eps in grid:
        row = [f"{eps:g}"]
        for attack in ("clean", *columns, "worst"):
            cell = cells.get((attack, eps)) or (cells.get(("clean", 0.0)) if eps == 0 else None)
            row.append(
                ""
                if cell is None or (attack == "clean" and eps > 0)
                else f"{100 * cell['mean']:.1f} ± {100 * cell['ci95']:.1f}"
            )
        lines.append("| " + " | ".join(row) + " |")
    checks = ", ".join(f"{c['name']} {'PASS' if c['passed'] else 'FAIL'}" for c in result["checks"])
    return "\n".join([*lines, "", f"Sanity checks: {checks}.", ""])


COLORS = {"adml": "tab:blue", "maml": "tab:orange"}
ATTACKS = {"worst": "-"}  # the headline: the per-image worst case over the suite


def plot(results: dict[str, dict], target: Path) -> None:
    """One panel per shot count; colour = algorithm, line = attack, hollow = clean-only tune."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = sorted({result["shot"] for result in results.values()})
    figure, panels = plt.subplots(1, len(shots), figsize=(6 * len(shots), 4.5), squeeze=False)
    for axes, shot in zip(panels[0], shots, strict=True):
        for name, result in sorted(results.items()):
            if result["shot"] != shot:
                continue
            algo = name.split("_")[0]
            color = COLORS.get(algo.split("-")[0], f"C{len(COLORS) + len(axes.lines)}")
            adversarial = result["adapt"]["adversarial"]
            for attack, style in ATTACKS.items():
                points = sorted(
                    (c["eps"], c["mean"], c["ci95"])
                    for c in result["cells"]
                    if c["attack"] == attack
                )
                # the sanity check's eps stands alone: no line through the eps not measured
                for part in (
                    [p for p in points if p[0] < SANITY_EPS],
                    [p for p in points if p[0] >= SANITY_EPS],
                ):
                    if not part:
                        continue
                    eps, mean, ci = zip(*part, strict=True)
                    alone = eps[0] >= SANITY_EPS
                    axes.errorbar(
                        eps,
                        [100 * m for m in mean],
                        yerr=[100 * c for c in ci],
                        capsize=2,
                        color=color,
                        linestyle="none" if alone else style,
                        marker="o",
                        markersize=4,
                        markerfacecolor=color if adversarial else "white",
                        alpha=1.0 if adversarial else 0.6,
                        label=None
                        if alone
                        else f"{algo.upper()} {attack}"
                        f"{'' if adversarial else ', clean-only tune'} ({result['episodes']} ep.)",
                    )
        axes.set_title(f"5-way {shot}-shot, test alphabets")
        axes.set_xlabel(
            f"L-inf budget eps (pixels in [0, 1]); eps {SANITY_EPS:g} alone: the chance-level check"
        )
        axes.set_ylabel("accuracy (%)")
        axes.set_ylim(0, 100)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    results = load(args.results)
    for name, result in results.items():
        print(table(name, result))
    if args.plot is not None:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
