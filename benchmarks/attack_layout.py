"""Attack speed of a deployed model in PyTorch's NCHW and channels-last memory layouts, on
journaled evaluation episodes, and whether each layout reproduces the journal exactly.

Usage: python benchmarks/attack_layout.py JOURNAL [--episodes 0,1,10] [--checkpoint DIR]
Each episode is re-created (models.evaluation.adapted_episode) and its whole journaled protocol
(suite, eps grid, black-box episodes) runs once per layout on one torch thread, each from the
episode's own seed; a layout "reproduces" an episode when every figure equals the journal's,
and the layouts "agree" when they give each other's figures.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import torch
from replay import DEFAULT_CHECKPOINT, replay

from models.attacks import parse_attacks
from models.evaluation import attack_episode, episode_seed

LAYOUTS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("--episodes", default="0,1", help="comma-separated journaled indices")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"command: python benchmarks/attack_layout.py {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.platform()}, torch {torch.__version__}, one thread")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    replayed = replay(args.journal, args.checkpoint)
    header = replayed.header
    indices = [int(text) for text in args.episodes.split(",")]
    missing = [index for index in indices if index not in replayed.episodes]
    if missing:
        sys.exit(f"error: episodes {missing} are not in {args.journal}")
    suite = parse_attacks(header["attacks"])
    black = parse_attacks([header["blackbox"]])[0] if header["blackbox"] else None
    totals = dict.fromkeys(LAYOUTS, 0.0)
    reproduced = dict.fromkeys(LAYOUTS, 0)
    agreed = 0
    for index, task, adapted in replayed.adapted(indices):
        with_black = black if index % header["blackbox_every"] == 0 else None
        line = [f"episode {index}{' (black-box)' if with_black else ''}:"]
        outcomes = []
        for name, layout in LAYOUTS.items():
            model = copy.deepcopy(adapted).to(memory_format=layout)
            seconds = time.perf_counter()
            figures = attack_episode(
                model,
                task.x_query,
                task.y_query,
                header["eps"],
                suite,
                with_black,
                generator=torch.Generator().manual_seed(episode_seed(header["seed"], index)),
            )
            seconds = time.perf_counter() - seconds
            journaled = replayed.episodes[index]
            same = all(figures[key] == journaled[key] for key in ("accuracy", "blackbox"))
            outcomes.append(figures)
            totals[name] += seconds
            reproduced[name] += same
            line.append(f"{name} {seconds:.1f} s ({'=' if same else '!='} journal)")
        agreed += outcomes[0] == outcomes[1]
        line.append("layouts agree" if outcomes[0] == outcomes[1] else "layouts DIFFER")
        print(" ".join(line), flush=True)
    for name in LAYOUTS:
        print(
            f"{name}: {totals[name]:.1f} s over {len(indices)} episodes, "
            f"{reproduced[name]} of {len(indices)} reproduced exactly"
        )
    print(f"the two layouts gave the same figures in {agreed} of {len(indices)} episodes")
    print(f"speed-up of channels-last: {totals['nchw'] / totals['channels-last']:.2f}x")


if __name__ == "__main__":
    main()
