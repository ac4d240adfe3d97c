"""Paired comparison of evaluation journals of the same episodes (``fewshot evaluate
--journal``): per cell, each journal's mean and the mean per-episode difference to the first
journal with its 95% t interval, over the episodes every journal holds.

Usage: python benchmarks/paired_journals.py BASELINE.jsonl OTHER.jsonl [...] [--eps 0.1]
Refused when the journals' episodes differ (way, shot, query, seed or classes): a paired
difference means something only on the same episodes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.core import paired_interval
from models.evaluation import read_journal


def read(path: Path) -> tuple[dict, dict[int, dict[tuple[str, float], float]]]:
    """The journal's header and, per finished episode, its accuracy per (attack, eps)."""
    header, journaled = read_journal(path)
    episodes = {
        index: {(attack, float(eps)): accuracy for attack, eps, accuracy in record["accuracy"]}
        for index, record in journaled.items()
    }
    return header, episodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journals", nargs="+", type=Path)
    parser.add_argument("--eps", default="0.1", help="comma-separated eps of the worst case")
    args = parser.parse_args()
    read_in = [read(path) for path in args.journals]
    if any(header["episodes"] != read_in[0][0]["episodes"] for header, _ in read_in):
        print("error: the journals hold different episodes", file=sys.stderr)
        return 2
    common = sorted(set.intersection(*(set(episodes) for _, episodes in read_in)))
    if len(common) < 2:
        print("error: fewer than 2 episodes in every journal", file=sys.stderr)
        return 2
    cells = [("clean", 0.0)] + [("worst", float(e)) for e in args.eps.split(",")]
    print(
        f"{len(common)} episodes in every journal; accuracy in %, difference to "
        f"{args.journals[0].stem} with its 95% t interval"
    )
    print("| journal | " + " | ".join(f"{a} @{e:g}" for a, e in cells) + " |")
    print("|---" * (1 + len(cells)) + "|")
    _, base = read_in[0]
    for path, (_, episodes) in zip(args.journals, read_in, strict=True):
        shown = []
        for cell in cells:
            mean = 100 * sum(episodes[i][cell] for i in common) / len(common)
            if episodes is base:
                shown.append(f"{mean:.1f}")
                continue
            diff, half = paired_interval([episodes[i][cell] - base[i][cell] for i in common])
            shown.append(f"{mean:.1f} ({100 * diff:+.1f} ± {100 * half:.1f})")
        print(f"| {path.stem} | " + " | ".join(shown) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
