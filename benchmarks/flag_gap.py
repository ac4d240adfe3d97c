"""The prediction flag's gap to the strong suite, on the episodes of an evaluation journal.

Usage: python benchmarks/flag_gap.py JOURNAL [--checkpoint models/pretrained/adml-omniglot]
       [--eps 0.1] [--episodes N]
Re-creates each journaled episode (same sampler, seed and adaptation as `fewshot evaluate`;
its clean accuracy must match the journal's, which is checked and counted), runs the flag's
attack as the API does (APGD-CE-20, every image from the fixed start direction of
models.service.predictions) on the queries the model gets right, and prints its accuracy beside the
journal's per-image worst case over the suite, with 95% intervals over episodes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

import torch
from replay import DEFAULT_CHECKPOINT, replay

from models.attacks import correct
from models.core import mean_ci95
from models.service import PREDICT_ATTACK, start_directions


def cell(episode: dict, attack: str, eps: float) -> float:
    return next(v for a, e, v in episode["accuracy"] if a == attack and abs(e - eps) < 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--episodes", type=int, default=None, help="default: all journaled")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a worker's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"command: python benchmarks/flag_gap.py {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.platform()}, torch {torch.__version__}")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    replayed = replay(args.journal, Path(args.checkpoint))
    episodes = replayed.episodes
    indices = sorted(episodes)[: args.episodes]
    flag, worst, same = [], [], 0
    for index, task, adapted in replayed.adapted(indices):
        x, y = task.x_query, task.y_query
        right = correct(adapted, x, y)
        same += abs(right.double().mean().item() - cell(episodes[index], "clean", 0.0)) < 1e-9
        survives = right.clone()
        todo = right.nonzero().flatten()
        if len(todo):
            x_adv = PREDICT_ATTACK(
                adapted,
                x[todo],
                y[todo],
                eps=args.eps,
                generator=torch.Generator(),
                start=start_directions(x[todo]),
            )
            survives[todo] = correct(adapted, x_adv, y[todo])
        flag.append(survives.double().mean().item())
        worst.append(cell(episodes[index], "worst", args.eps))
    (flag_mean, flag_ci), (worst_mean, worst_ci) = mean_ci95(flag), mean_ci95(worst)
    gaps = [f - w for f, w in zip(flag, worst, strict=True)]
    gap_mean, gap_ci = mean_ci95(gaps)
    print(
        f"{len(indices)} episodes of {args.journal.name}; clean accuracy matches the journal "
        f"in {same} of them"
    )
    print(
        f"eps {args.eps:g}: flag ({PREDICT_ATTACK.name}, fixed start) "
        f"{100 * flag_mean:.1f} ± {100 * flag_ci:.1f}, journal worst case {100 * worst_mean:.1f}"
        f" ± {100 * worst_ci:.1f}, gap {100 * gap_mean:.1f} ± {100 * gap_ci:.1f} points"
    )


if __name__ == "__main__":
    main()
