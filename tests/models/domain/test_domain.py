"""The out-of-domain detector: its statistics, its verdicts, its file beside the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.core import (
    CheckpointError,
    FewShotNet,
    backbone_params,
    load_checkpoint,
    save_checkpoint,
)
from models.data import InputSpec, decode_for
from models.domain import (
    DomainConfig,
    Gaussian,
    domain_path_of,
    fit_domain,
    load_domain,
    pixel_stats,
    save_domain,
)
from tests.conftest import TINY, synthetic_task
from tests.synthetic import OUT_OF_DOMAIN, colour_shape, encode

SPEC = InputSpec(channels=1, size=TINY.image_size, invert=False)


def _decoded(images) -> torch.Tensor:
    pixels = [decode_for(SPEC, encode(image), source="test") for image in images]
    return torch.from_numpy(np.stack(pixels)).float() / 255


def _strokes(seed: int, count: int = 60) -> torch.Tensor:
    """In-domain images for the tiny model: noisy binary templates (see synthetic_task)."""
    return synthetic_task(6, count // 6, 0, size=TINY.image_size, seed=seed).x_support


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    backbone = backbone_params(FewShotNet(TINY, n_way=2))
    train = torch.cat([_strokes(seed) for seed in range(4)])
    groups = [f"g{seed}" for seed in range(4) for _ in range(60)]
    detector = fit_domain(
        TINY, backbone, train, groups, _strokes(10), description="noisy binary templates"
    )
    return backbone, detector


def test_gaussian_distance_is_the_mahalanobis_distance():
    samples = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [1.0, 2.0, 0.5]
    )
    gaussian = Gaussian.fit(samples, shrinkage=0.0)
    point = torch.tensor([[1.0, -2.0, 0.25]])
    centred = (point.double() - gaussian.mean)[0]
    inverse = torch.linalg.inv(torch.cov(samples.T.double()))
    assert gaussian.distance(point).item() == pytest.approx(
        float(centred @ inverse @ centred) ** 0.5
    )
    assert gaussian.distance(gaussian.mean[None]).item() == pytest.approx(0.0, abs=1e-9)


def test_pixel_stats_see_colour_only_in_rgb_models():
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(np.array(colour_shape(rng, size=16))).permute(2, 0, 1)[None] / 255
    assert pixel_stats(rgb, 3).shape == (1, 5) and pixel_stats(rgb, 3)[0, 4] > 0
    assert pixel_stats(rgb.mean(1, keepdim=True), 1).shape == (1, 4)
    white = torch.ones(1, 1, 8, 8)
    brightness, contrast, extremes, edges = pixel_stats(white, 1)[0].tolist()
    assert (brightness, contrast, extremes, edges) == (1.0, 0.0, 1.0, 0.0)


def test_held_out_in_domain_images_pass_and_foreign_ones_are_refused_with_a_reason(fitted):
    backbone, detector = fitted
    held_out = detector.check(TINY, backbone, _strokes(20, 120))
    assert sum(v.in_domain for v in held_out) >= 0.95 * len(held_out)
    rng = np.random.default_rng(0)
    for name, make in OUT_OF_DOMAIN.items():
        if name == "font digits":  # characters: not reliably foreign (docs/domain.md)
            continue
        verdicts = detector.check(TINY, backbone, _decoded([make(rng) for _ in range(20)]))
        assert sum(not v.in_domain for v in verdicts) >= 18, name
        refused = next(v for v in verdicts if not v.in_domain)
        assert "training images" in refused.reason


def test_saved_detector_loads_with_the_same_verdicts_and_refuses_tampering(fitted, tmp_path):
    backbone, detector = fitted
    card_path = save_checkpoint(
        tmp_path / "base", backbone, {"backbone": {"in_channels": 1, "image_size": 8}}
    )
    save_domain(load_checkpoint(card_path), detector, {"quantile": DomainConfig.quantile})
    checkpoint = load_checkpoint(card_path)  # the card still matches its weights
    assert checkpoint.card["domain"]["description"] == "noisy binary templates"
    loaded = load_domain(checkpoint)
    x = torch.cat([_strokes(30, 12), _decoded([colour_shape(np.random.default_rng(1))])])
    for again, first in zip(
        loaded.check(TINY, backbone, x), detector.check(TINY, backbone, x), strict=True
    ):
        assert (again.in_domain, again.reason) == (first.in_domain, first.reason)
        assert again.feature_score == pytest.approx(first.feature_score, rel=1e-9)
        assert again.pixel_score == pytest.approx(first.pixel_score, rel=1e-9)
    statistics: Path = domain_path_of(checkpoint.weights_path)
    statistics.write_bytes(statistics.read_bytes()[:-1] + b" ")
    with pytest.raises(CheckpointError, match="does not match"):
        load_domain(checkpoint)
    card = json.loads(card_path.read_text())
    del card["domain"]
    card_path.write_text(json.dumps(card))
    assert load_domain(load_checkpoint(card_path)) is None


def test_the_shipped_detector_accepts_test_alphabet_drawings_and_refuses_colour_shapes(
    omniglot_path,
):
    from cli.runs import split_from_card
    from models.core import model_from_checkpoint
    from models.data import omniglot_drawings

    checkpoint = load_checkpoint("models/pretrained/adml-omniglot")
    model, _ = model_from_checkpoint(checkpoint)
    detector = load_domain(checkpoint)
    assert detector is not None, "run: fewshot domain fit models/pretrained/adml-omniglot"
    spec = InputSpec.from_card(checkpoint.card)
    drawings = omniglot_drawings(omniglot_path, split_from_card(checkpoint.card).test)
    files = [data for character in list(drawings.values())[:20] for data in character.values()]
    x = torch.from_numpy(np.stack([decode_for(spec, f, source="t") for f in files])).float() / 255
    verdicts = detector.check(model.config, backbone_params(model), x)
    assert sum(v.in_domain for v in verdicts) >= 0.97 * len(verdicts)
    rng = np.random.default_rng(0)
    shapes = [decode_for(spec, encode(colour_shape(rng)), source="s") for _ in range(50)]
    x = torch.from_numpy(np.stack(shapes)).float() / 255
    assert not any(v.in_domain for v in detector.check(model.config, backbone_params(model), x))
