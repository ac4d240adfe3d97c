"""The out-of-domain detector of each base model: false refusals of genuine drawings, catch rate
of generated out-of-domain images, with 95% Wilson intervals.

Usage: python benchmarks/domain_detector.py [CHECKPOINT ...] [--per-family 300] [--seed 0]
       [--refit [--quantile Q]] [--data PATH]
Default checkpoints: the shipped base models, each measured with the detector its card names
(--refit: one fitted now as `fewshot domain fit` fits it: statistics on training alphabets,
thresholds on validation alphabets and held-out folds of training alphabets). Drawings of the
test alphabets (used for neither) measure false refusals, as the PNGs and re-encoded as JPEG;
every image goes through the service's decoder, from encoded bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.domain import fit_for_checkpoint
from cli.runs import default_data_path, split_from_card
from models.core import (
    backbone_params,
    load_checkpoint,
    model_from_checkpoint,
)
from models.data import (
    InputSpec,
    decode_for,
    omniglot_drawings,
)
from models.domain import DomainConfig, DomainDetector, load_domain
from tests.synthetic import OUT_OF_DOMAIN, encode

SHIPPED = ("models/pretrained/adml-omniglot", "models/pretrained/maml-omniglot")


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def decoded(spec: InputSpec, images: list[bytes]) -> torch.Tensor:
    pixels = np.stack([decode_for(spec, data, source="benchmark") for data in images])
    return torch.from_numpy(pixels).float() / 255


def test_drawings(card: dict, data: Path) -> dict[str, list[bytes]]:
    alphabets = split_from_card(card).test
    files = [f for chars in omniglot_drawings(data, alphabets).values() for f in chars.values()]
    as_jpeg = [encode(Image.open(io.BytesIO(f)).convert("L"), "JPEG", 75) for f in files]
    return {"test drawings (PNG)": files, "test drawings (JPEG q75)": as_jpeg}


def row(name: str, flags: list[bool], refused_is_good: bool) -> str:
    hits, n = sum(flags), len(flags)
    low, high = wilson(hits, n)
    what = "caught" if refused_is_good else "refused"
    return f"| {name} | {n} | {what} {100 * hits / n:.1f}% ({100 * low:.1f}-{100 * high:.1f}) |"


def measure(
    path: str, data: Path, per_family: int, seed: int, config: DomainConfig, refit: bool
) -> None:
    checkpoint = load_checkpoint(path)
    shipped = None if refit else load_domain(checkpoint)
    detector: DomainDetector = shipped or fit_for_checkpoint(checkpoint, data, config)
    origin = "its shipped detector" if shipped else "a detector fitted now"
    spec = InputSpec.from_card(checkpoint.card)
    model, _ = model_from_checkpoint(checkpoint)
    model_config, backbone = model.config, backbone_params(model)
    print(
        f"\n### {path}, {origin} (thresholds: features {detector.feature_threshold:.1f}, "
        f"pixels {detector.pixel_threshold:.1f})\n"
    )
    print("| images | n | out of domain (95% CI) |\n|---|---|---|")
    for name, images in test_drawings(checkpoint.card, data).items():
        verdicts = detector.check(model_config, backbone, decoded(spec, images))
        print(row(name, [not v.in_domain for v in verdicts], refused_is_good=False))
    rng = np.random.default_rng(seed)
    for name, make in OUT_OF_DOMAIN.items():
        images = [encode(make(rng), "PNG") for _ in range(per_family)]
        verdicts = detector.check(model_config, backbone, decoded(spec, images))
        print(row(name, [not v.in_domain for v in verdicts], refused_is_good=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", default=list(SHIPPED))
    parser.add_argument("--per-family", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantile", type=float, default=DomainConfig.quantile)
    parser.add_argument("--data", type=Path, default=default_data_path())
    parser.add_argument("--refit", action="store_true", help="fit now instead of the card's")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(f"# domain_detector.py {' '.join(sys.argv[1:])}")
    print(f"# {dt.date.today()} {platform.platform()} torch {torch.__version__}")
    for path in args.checkpoints:
        config = DomainConfig(quantile=args.quantile)
        measure(path, args.data, args.per_family, args.seed, config, args.refit)


if __name__ == "__main__":
    main()
