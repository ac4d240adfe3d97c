"""Tasks per second of the ADML and the MAML meta-step, same settings, one run.

Usage: python benchmarks/meta_train_speed.py [--query 15] [--iterations 10] [--device cpu]
Uses the real Omniglot training alphabets when ../shared/data/omniglot exists (random pixels
otherwise: the cost does not depend on the pixel values).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.core import BackboneConfig, FewShotNet, MetaConfig
from models.data import ClassImages, EpisodeSampler, load_omniglot, with_rotations
from models.meta import Ranks, distributed_meta_step, make_optimizer

OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def classes() -> tuple[list[ClassImages], str]:
    if OMNIGLOT.exists():
        return with_rotations(load_omniglot(OMNIGLOT)), "Omniglot (all 8 alphabets, rotations)"
    gen = torch.Generator().manual_seed(0)
    fake = [
        ClassImages(
            f"c{k}",
            f"c{k}",
            torch.randint(0, 256, (20, 1, 28, 28), generator=gen, dtype=torch.uint8),
        )
        for k in range(50)
    ]
    return fake, "random pixels (Omniglot not found)"


def tasks_per_second(config: MetaConfig, sampler: EpisodeSampler, iterations: int, device) -> float:
    torch.manual_seed(0)
    model = FewShotNet(BackboneConfig(), n_way=config.way).to(device)
    optimizer = make_optimizer(model, config)

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            tasks = [
                sampler.episode(i * config.meta_batch + j, device=device)
                for j in range(config.meta_batch)
            ]
            distributed_meta_step(model, optimizer, tasks, config, Ranks())
        if device.type == "cuda":
            torch.cuda.synchronize()

    run(0, 2)  # warm-up
    started = time.perf_counter()
    run(2, iterations)
    return iterations * config.meta_batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--query", type=int, default=15)
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data, source = classes()
    base = MetaConfig(
        way=args.way,
        shot=args.shot,
        query=args.query,
        meta_batch=args.meta_batch,
        inner_steps=args.inner_steps,
        first_order=args.first_order,
    )
    sampler = EpisodeSampler(data, way=args.way, shot=args.shot, query=args.query, seed=0)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"machine: {platform.platform()}, {torch.get_num_threads()} threads, device {device}"
        + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else "")
    )
    print(
        f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, torch {torch.__version__}"
    )
    print(
        f"data: {source}; {args.way}-way {args.shot}-shot, {args.query} queries/class, "
        f"meta-batch {args.meta_batch}, inner steps {args.inner_steps}, "
        f"{'first' if args.first_order else 'second'} order, {args.iterations} timed iterations"
    )
    rates = {}
    for algo in ("maml", "adml"):
        rates[algo] = tasks_per_second(
            dataclasses.replace(base, algo=algo), sampler, args.iterations, device
        )
        print(f"{algo:5s} {rates[algo]:8.2f} tasks/s  ({1 / rates[algo]:.3f} s/task)")
    print(f"ADML costs {rates['maml'] / rates['adml']:.2f}x MAML per task")


if __name__ == "__main__":
    main()
