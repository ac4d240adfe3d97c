"""Meta-train a base model of your own on a generated RGB dataset, as the service's job does:
validation accuracy (clean, FGSM) against meta-steps, seconds per meta-step on this machine,
then clean and worst-case accuracy on test classes it never saw, beside the untrained
initialization measured on the same test episodes.

Usage: python benchmarks/own_base_model.py [--classes 60] [--per-class 20] [--size 32]
       [--iterations 300] [--validate-every 50] [--test-episodes 100]
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

from models.service import (
    BaseTrainJob,
    LabelledImages,
    TrainRun,
    decode_classes,
    split_classes,
)
from tests.synthetic import shape_dataset


def dataset(classes: int, per_class: int, size: int) -> LabelledImages:
    generated = shape_dataset(classes, per_class, seed=0, size=size)
    named = {name: [(name, data) for data in files] for name, files in generated.items()}
    return decode_classes(named, channels=3, size=size)


def test_row(name: str, run: TrainRun, episodes: int) -> None:
    result = run.evaluate("test", episodes, run.job.attacks)
    clean, worst = result.cell("clean", 0.0), result.cell("worst", run.job.eps)
    print(
        f"| {name} | {100 * clean.mean:.1f} ± {100 * clean.ci95:.1f} | "
        f"{100 * worst.mean:.1f} ± {100 * worst.ci95:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=60)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--validate-every", type=int, default=50)
    parser.add_argument("--test-episodes", type=int, default=100)
    args = parser.parse_args()
    print(f"# own_base_model.py {' '.join(sys.argv[1:])}")
    print(
        f"# {dt.date.today()} {platform.platform()} torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    images = dataset(args.classes, args.per_class, args.size)
    job = BaseTrainJob(
        name="bench",
        channels=3,
        image_size=args.size,
        eps=8 / 255,
        iterations=args.iterations,
        split=split_classes(images.classes),
        validate_every=args.validate_every,
        eval_episodes=args.test_episodes,
    )
    print(
        f"# split: {', '.join(f'{p} {len(n)}' for p, n in job.split.items())} classes; "
        f"test suite {', '.join(job.attacks)} at eps {job.eps:.4f}"
    )
    untrained = TrainRun(job, images, torch.device("cpu"))  # the same seed: the same init
    run = TrainRun(job, images, torch.device("cpu"))
    started = time.perf_counter()
    run.train(lambda _: None, lambda _: None)
    seconds = time.perf_counter() - started
    print("\n| meta-step | val clean | val FGSM |\n|---|---|---|")
    for row in run.state.validation:
        fgsm = next(v for k, v in row.items() if k.startswith("val_fgsm"))
        print(f"| {row['iteration']} | {100 * row['val_clean']:.1f} | {100 * fgsm:.1f} |")
    print(
        f"\n{seconds:.0f} s for {args.iterations} meta-steps with validation "
        f"({run.state.wall_time_s / args.iterations:.3f} s per meta-step without it)\n"
    )
    print(f"| test classes, {args.test_episodes} episodes 5-way 1-shot | clean % | worst % |")
    print("|---|---|---|")
    test_row("untrained initialization, same adaptation", untrained, args.test_episodes)
    test_row(f"ADML, {args.iterations} meta-steps", run, args.test_episodes)


if __name__ == "__main__":
    main()
