"""Merge the journals of one evaluation split over processes (``fewshot evaluate
--first-episode``) into one, so that resuming the whole evaluation from it skips every episode
already measured.

Usage: python benchmarks/merge_journals.py TARGET.jsonl SOURCE.jsonl [...]
Run it while no process writes TARGET. Refused (TARGET unchanged): another protocol's header, or
an episode whose figures differ between journals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.journal import JournalMismatch, merge_journal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args()
    try:
        for source in args.sources:
            added = merge_journal(args.target, source)
            print(f"{source}: {added} episodes added to {args.target}")
    except JournalMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
