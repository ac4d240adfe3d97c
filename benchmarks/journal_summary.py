"""Figures so far of journaled evaluations (``fewshot evaluate --journal``, benchmarks/ceiling.py):
per attack and eps, mean accuracy and 95% CI over the episodes finished, as a markdown table.

Usage: python benchmarks/journal_summary.py JOURNAL.jsonl [...] [--eps 0,0.05,0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.evaluation import EpisodeTally, read_journal


def tally_of(path: Path) -> tuple[EpisodeTally, int]:
    tally = EpisodeTally()
    _, episodes = read_journal(path)
    for record in episodes.values():
        tally.add(record)
    return tally, len(episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journals", nargs="+", type=Path)
    parser.add_argument("--eps", default="0.05,0.1", help="eps columns besides clean")
    args = parser.parse_args()
    grid = [float(e) for e in args.eps.split(",")]
    print("| journal | episodes | clean | " + " | ".join(f"worst @{e:g}" for e in grid) + " |")
    print("|---" * (3 + len(grid)) + "|")
    for path in args.journals:
        tally, episodes = tally_of(path)
        cells = {(c.attack, c.eps): c for c in tally.cells()}
        shown = [cells.get(("clean", 0.0))] + [cells.get(("worst", e)) for e in grid]
        figures = " | ".join(
            "not measured" if c is None else f"{100 * c.mean:.1f} ± {100 * c.ci95:.1f}"
            for c in shown
        )
        print(f"| {path.name} | {episodes} | {figures} |")


if __name__ == "__main__":
    main()
