"""What one predicted image costs the API process, stage by stage, on one CPU thread: decoding
its PNG (opening and inflating it, converting and cropping, the LANCZOS resize), the adapted
model's compiled forward pass and the base model's out-of-domain check, at batch 1, 16 and 256.

Usage: python benchmarks/prediction_cost.py [--repeats 5]   (on an otherwise idle machine)
Omniglot test-alphabet drawings (105 x 105 PNG) from ../shared/data; each figure is the best of
--repeats passes, in microseconds per image. It says where the CPU of a prediction goes (and so
what bounds one-image requests against /healthz in benchmarks/predict_throughput.py).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.service_latency import print_header, support_sets
from common.settings import PRETRAINED_DIR
from models.core import (
    AdaptConfig,
    inference_graph,
)
from models.data import decode_for
from models.meta import adapt_and_deploy
from models.service import (
    load_base_models,
    probabilities,
)


def per_image_us(step: Callable[[], object], images: int, repeats: int) -> float:
    step()  # warm up (a compiled graph optimises on its first calls)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_base_models(PRETRAINED_DIR).get(None)
    items = support_sets(list(base.card["data"]["split"]["test"]), 1)[0]
    files = [data for _, _, data in items]  # 50 PNGs
    print_header(base.name)
    print(f"one torch thread; {len(files)} Omniglot PNGs; microseconds per image\n")

    def opened() -> None:
        for data in files:
            with Image.open(io.BytesIO(data)) as image:
                image.load()

    grey = [Image.open(io.BytesIO(d)).convert("L") for d in files]
    decode_rows = {
        "decode, whole (decode_for)": lambda: [decode_for(base.spec, d, source="q") for d in files],
        "  of it: open and inflate the PNG": opened,
        "  of it: LANCZOS resize to the model's size": lambda: [
            g.resize((base.spec.size,) * 2, Image.Resampling.LANCZOS) for g in grey
        ],
    }
    for name, step in decode_rows.items():
        print(f"{name:48s} {per_image_us(step, len(files), args.repeats):8.0f}")

    decoded = torch.stack([torch.from_numpy(decode_for(base.spec, d, source="q")) for d in files])
    x_support = decoded[::10].float() / 255.0  # one drawing of each of the 5 characters
    backbone = {k: v for k, v in base.tensors.items() if not k.startswith("head.")}
    model = adapt_and_deploy(
        base.backbone,
        backbone,
        x_support,
        torch.arange(5),
        n_way=5,
        adapt_config=AdaptConfig(steps=2),
    )
    compiled = inference_graph(model)
    print(f"\n{'batch':48s} {'1':>8s} {'16':>8s} {'256':>8s}")
    for name, run in (
        ("compiled forward pass (probabilities)", lambda x: probabilities(compiled, x)),
        ("out-of-domain check (check_domain)", base.check_domain),
    ):
        figures = []
        for batch in (1, 16, 256):
            x = decoded[torch.arange(batch) % len(decoded)]
            figures.append(per_image_us(lambda x=x, run=run: run(x), batch, args.repeats))
        print(f"{name:48s} " + " ".join(f"{f:8.0f}" for f in figures))


if __name__ == "__main__":
    main()
