"""Merge the journals of one evaluation split over processes (``fewshot evaluate
--first-episode``) into one, so that resuming the whole evaluation from it skips every episode
already measured.

Usage: python benchmarks/merge_journals.py TARGET.jsonl SOURCE.jsonl [...]
Run it while no process writes any of these journals (stop the runs first). Refused, with no
file changed: another protocol's header, a damaged line, or an episode whose figures differ
between journals. A source's last line cut short by a kill is left out (its run measures that
episode again when it resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.evaluation import JournalMismatch, merge_journals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args()
    try:
        added = merge_journals(args.target, args.sources)
    except JournalMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for source, count in added.items():
        print(f"{source}: {count} episodes added to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
