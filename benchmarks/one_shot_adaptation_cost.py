"""What the service's one-shot default adaptation costs: the bare adaptation (no report) of a
1-shot support set under AdaptConfig's defaults (20 steps, no copies) and under the recipe a
1-shot job gets (the shipped ADML card's ``service_adaptation``: 40 steps, 16 affine copies),
both with FGSM copies, on one torch thread, measured in the same run.

Usage: python benchmarks/one_shot_adaptation_cost.py [--ways 5,20] [--repeats 5]
The support images are seeded random pixels: the cost does not depend on what they show.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.settings import PRETRAINED_DIR
from models.core import AdaptConfig, backbone_params, load_checkpoint, model_from_checkpoint
from models.meta import adapt_and_deploy
from models.service import load_base_models


def seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ways", default="5,20")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, meta = model_from_checkpoint(load_checkpoint(PRETRAINED_DIR / "adml-omniglot.json"))
    config, backbone = model.config, backbone_params(model)
    recipe = load_base_models(PRETRAINED_DIR).get("adml-omniglot").one_shot_adaptation
    assert recipe is not None, "the shipped ADML card has no one-shot recipe"
    plain = AdaptConfig(eps=meta.eps)
    one_shot = AdaptConfig(eps=meta.eps, augment=recipe[0], steps=recipe[1])
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%MZ}, {platform.node()}, torch {torch.__version__}"
    )
    print(f"# {' '.join(sys.argv)}; one thread; median of {args.repeats}")
    columns = [f"{c.steps} steps, {c.augment} copies" for c in (plain, one_shot)]
    print(f"| way | {' | '.join(columns)} | ratio |")
    print("|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    for way in (int(text) for text in args.ways.split(",")):
        size = config.image_size
        x = torch.rand(way, config.in_channels, size, size, generator=generator)
        y = torch.arange(way)

        before, after = (
            seconds(
                partial(adapt_and_deploy, config, backbone, x, y, n_way=way, adapt_config=c),
                args.repeats,
            )
            for c in (plain, one_shot)
        )
        print(f"| {way} | {before:.2f} s | {after:.2f} s | {after / before:.1f}x |")


if __name__ == "__main__":
    main()
