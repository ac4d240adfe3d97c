"""Torch threads beside a busy process: APGD-CE-100 on 20 Omniglot-sized images (a report's
attack call), with 1 thread and with one per core, alone and beside one process that keeps a
core busy (as an API process under load, or a second worker, beside a worker).

Usage: python benchmarks/thread_contention.py [--repeats 3]   (on an otherwise idle machine)
Each figure is the best of --repeats runs, each setting in a fresh process. It is why workers
run on FEWSHOT_WORKER_TORCH_THREADS=1 by default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import sys, time, torch
sys.path.insert(0, {root!r})
from models.attacks.autopgd import apgd
from models.core.config import BackboneConfig
from models.core.networks import FewShotNet
torch.set_num_threads({threads})
torch.manual_seed(0)
model = FewShotNet(BackboneConfig(), n_way=5).eval()
x, y = torch.rand(20, 1, 28, 28), torch.arange(20) % 5
apgd(model, x, y, eps=0.001, steps=5, generator=torch.Generator())  # warm-up
best = float("inf")
for _ in range({repeats}):
    started = time.perf_counter()
    apgd(model, x, y, eps=0.001, steps=100, generator=torch.Generator())
    best = min(best, time.perf_counter() - started)
print(best)
"""


def seconds(threads: int, repeats: int) -> float:
    code = MEASURE.format(root=str(ROOT), threads=threads, repeats=repeats)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    return float(done.stdout.decode().strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"command: python benchmarks/thread_contention.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"machine: {platform.platform()}, {cores} cores")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    counts = sorted({1, cores})
    alone = {n: seconds(n, args.repeats) for n in counts}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        beside = {n: seconds(n, args.repeats) for n in counts}
    finally:
        busy.kill()
        busy.wait()
    for n in counts:
        print(
            f"{n} torch thread(s): alone {alone[n]:.2f} s, beside one busy process "
            f"{beside[n]:.2f} s ({beside[n] / alone[n]:.1f}x)"
        )
    if cores > 1:
        print(
            f"{cores} threads vs 1: alone {alone[1] / alone[cores]:.2f}x as fast, "
            f"beside a busy process {beside[1] / beside[cores]:.2f}x as fast"
        )


if __name__ == "__main__":
    main()
