"""Report cost: a robustness report's attacks run one call per eps (before) against one batched
call over every eps (now), on the same fold models, images and attacks, in this same run.

Usage: python benchmarks/report_cost.py [--attacks NAMES] [--threads 1]
A 5-way 5-shot support set from the base model's test alphabets in ../shared/data/omniglot,
its 5 cross-validation folds adapted as a report does (robust adaptation), then each attack of
the report suite over every fold at every eps of the report grid, both ways. Prints seconds and
the accuracy per eps of both ways (they differ only through random starts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from service_latency import support_sets

from common.settings import PRETRAINED_DIR
from models.attacks import correct, parse_attacks, suite_correctness
from models.core import AdaptConfig
from models.data import decode_for
from models.evaluation import SANITY_EPS
from models.meta import adapt_and_deploy
from models.report import (
    every_eps,
    folds_of,
)
from models.service import (
    REPORT_ATTACKS,
    REPORT_EPS_GRID,
    load_base_models,
)


def per_eps_calls(model, x, y, attack, grid, generator, clean) -> list[torch.Tensor]:
    """The report's attack loop before batching: one call per eps."""
    return [
        suite_correctness(model, x, y, attacks=[attack], eps=eps, generator=generator, clean=clean)[
            attack.name
        ]
        for eps in grid
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", default=",".join(REPORT_ATTACKS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a worker's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"command: python benchmarks/report_cost.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"machine: {platform.platform()}, torch {torch.__version__}, {args.threads} thread(s)")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    base = load_base_models(PRETRAINED_DIR).get(None)
    items = support_sets(list(base.card["data"]["split"]["test"]), 1)[0]
    support = [item for n, item in enumerate(items) if n % 10 < 5]
    x = torch.stack([torch.from_numpy(decode_for(base.spec, d, source=f)) for _, f, d in support])
    x = x.float() / 255
    classes = sorted({label for label, _, _ in support})
    y = torch.tensor([classes.index(label) for label, _, _ in support])
    config = AdaptConfig(steps=20, eps=base.meta.eps)
    folds = []
    for fold, mask in enumerate(folds_of(y, 5)):
        torch.manual_seed(fold)
        model = adapt_and_deploy(
            base.backbone,
            base.tensors,
            x[~mask],
            y[~mask],
            n_way=5,
            adapt_config=config,
            head_init=base.meta.head_init,
        )
        folds.append((model, x[mask], y[mask], correct(model, x[mask], y[mask])))
    grid = sorted({0.0, *REPORT_EPS_GRID, SANITY_EPS})
    print(f"5-way 5-shot, {len(folds)} folds of {len(folds[0][2])} held-out images, eps {grid}")
    totals = {"per eps": 0.0, "batched": 0.0}
    for attack in parse_attacks(args.attacks):
        row = {}
        for way, run in (("per eps", per_eps_calls), ("batched", every_eps)):
            started = time.perf_counter()
            outcomes = [
                run(model, xf, yf, attack, grid, torch.Generator().manual_seed(n), clean)
                for n, (model, xf, yf, clean) in enumerate(folds)
            ]
            seconds = time.perf_counter() - started
            totals[way] += seconds
            accuracy = [
                torch.cat([o[i] for o in outcomes]).double().mean().item() for i in range(len(grid))
            ]
            row[way] = (seconds, accuracy)
        (old_s, old_acc), (new_s, new_acc) = row["per eps"], row["batched"]
        print(
            f"{attack.name:12s} per eps {old_s:7.2f} s  batched {new_s:7.2f} s  "
            f"({old_s / new_s:4.1f}x)  accuracy per eps {[round(a, 2) for a in old_acc]} "
            f"vs {[round(a, 2) for a in new_acc]}"
        )
    old, new = totals["per eps"], totals["batched"]
    print(f"all attacks: per eps {old:.1f} s, batched {new:.1f} s ({old / new:.1f}x)")
    print("a report runs both variants (robust, clean-only): twice these attack times")


if __name__ == "__main__":
    main()
