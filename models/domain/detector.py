"""Does an image look like a base model's meta-training data? Out-of-domain detection.

Two scores per image (model input ``[B, C, S, S]``, pixels in [0, 1], as the service feeds it):

- ``features``: Mahalanobis distance of the backbone's features to those of the training images
  (one Gaussian with a covariance shrunk toward its mean variance; Lee et al. 2018, "A Simple
  Unified Framework for Detecting Out-of-Distribution Samples"). The backbone runs with its
  BatchNorm statistics frozen at those of the training images, so a score never depends on
  the other images of a request.
- ``pixels``: Mahalanobis distance of a few pixel statistics (brightness, contrast, share of
  near-black or near-white pixels, edge strength, and colour spread for RGB models).

Each score has a threshold at a high quantile of the scores of held-out in-domain images: the
validation classes under the full fit, and folds of training groups (alphabets, classes) each
under a fit on the other folds; never the test classes. An image is in the domain when both
scores are within their thresholds. The statistics live in ``NAME.domain.safetensors`` beside the
checkpoint; the card's ``domain`` section holds the description, thresholds and file hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from models.core import (
    NORM_STATISTICS,
    BackboneConfig,
    Checkpoint,
    CheckpointError,
    FewShotNet,
    Params,
    WeightsMismatch,
    atomic_write,
    load_weights,
    paths_of,
    sha256_of,
)

PIXEL_STATS = {  # name -> how a person reads it
    "brightness": "mean brightness",
    "contrast": "contrast",
    "extremes": "share of near-black or near-white pixels",
    "edges": "edge strength",
    "colour": "colour",
}


CHUNK = 256  # images per forward pass of the backbone


@dataclass(frozen=True)
class DomainConfig:
    reference_images: int = 3000  # training images the statistics are fitted on (more: same fit)
    quantile: float = 0.999  # threshold per score: this quantile of held-out images' scores
    folds: int = 5  # training groups are scored in this many folds, each under the others' fit
    # threshold = margin x that quantile: a support set of 25 images must rarely be refused
    # (1% per image would refuse 22% of 5-way 5-shot sets); see docs/domain.md
    margin: float = 2.0
    shrinkage: float = 0.05  # covariance pulled this far toward its mean variance (stable inverse)


@dataclass(frozen=True)
class Gaussian:
    mean: Tensor  # [D]
    precision: Tensor  # [D, D], inverse of the shrunk covariance
    scale: Tensor  # [D], standard deviations, to name the statistic that is most off

    @classmethod
    def fit(cls, samples: Tensor, shrinkage: float) -> Gaussian:
        samples = samples.double()
        mean = samples.mean(0)
        covariance = torch.cov(samples.T).reshape(len(mean), len(mean))
        level = covariance.diagonal().mean().clamp_min(1e-12)
        shrunk = (1 - shrinkage) * covariance + shrinkage * level * torch.eye(len(mean))
        return cls(mean, torch.linalg.inv(shrunk), covariance.diagonal().clamp_min(1e-12).sqrt())

    def distance(self, samples: Tensor) -> Tensor:
        centred = samples.double() - self.mean
        return ((centred @ self.precision) * centred).sum(1).clamp_min(0).sqrt()


def pixel_stats(x: Tensor, channels: int) -> Tensor:
    """``[B, 4]`` statistics (``[B, 5]`` with colour for RGB models) of images in [0, 1]."""
    gray = x.mean(1)
    columns = [
        gray.mean((1, 2)),
        gray.std((1, 2)),
        ((gray < 0.1) | (gray > 0.9)).float().mean((1, 2)),
        (gray[:, 1:] - gray[:, :-1]).abs().mean((1, 2))
        + (gray[:, :, 1:] - gray[:, :, :-1]).abs().mean((1, 2)),
    ]
    if channels == 3:
        columns.append((x.amax(1) - x.amin(1)).mean((1, 2)))
    return torch.stack(columns, 1)


def embed(
    config: BackboneConfig, backbone: Params, norm_buffers: dict[str, Tensor], x: Tensor
) -> Tensor:
    """Backbone features ``[B, D]`` with BatchNorm frozen at ``norm_buffers`` (in chunks: a
    few thousand large images never meet in one batch)."""
    model = _backbone_module(config, {**backbone, **norm_buffers})
    with torch.no_grad():
        return torch.cat([model(part.float(), features_only=True) for part in x.split(CHUNK)])


def _backbone_module(
    config: BackboneConfig, state: dict[str, Tensor], *, with_norm: bool = True
) -> FewShotNet:
    """A frozen-norm Conv-4 in eval mode holding ``state``: every backbone weight (and, with
    ``with_norm``, every BatchNorm statistic) must be in it."""
    optional = NORM_STATISTICS if not with_norm else ("num_batches_tracked",)
    model = FewShotNet(config, n_way=1, frozen_norm=True)
    try:
        load_weights(model, state, optional=optional)
    except WeightsMismatch as error:
        raise ValueError(f"backbone weights do not fit: {error}") from error
    return model.eval()


def norm_buffers(config: BackboneConfig, backbone: Params, reference: Tensor) -> dict[str, Tensor]:
    """BatchNorm statistics of ``reference`` (biased variance, as a training-mode pass over the
    whole batch computes them), one norm layer at a time over chunks."""
    model = _backbone_module(config, dict(backbone), with_norm=False)
    for norm in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
        sums: list[Tensor] = []

        def accumulate(
            _: nn.Module, inputs: tuple[Tensor, ...], __: Tensor, sums: list[Tensor] = sums
        ) -> None:
            batch = inputs[0].double()
            sums.append(torch.stack([batch.sum((0, 2, 3)), (batch**2).sum((0, 2, 3))]))
            sums.append(torch.tensor(batch.numel() / batch.shape[1], dtype=torch.float64))

        handle = norm.register_forward_hook(accumulate)
        with torch.no_grad():
            for part in reference.split(CHUNK):
                model(part.float(), features_only=True)
        handle.remove()
        total = sum(sums[1::2])
        first, second = sum(sums[0::2]) / total
        norm.running_mean.copy_(first)
        norm.running_var.copy_((second - first**2).clamp_min(0))
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}


@dataclass(frozen=True)
class Verdict:
    in_domain: bool
    feature_score: float  # Mahalanobis distance of the features; threshold in the detector
    pixel_score: float
    reason: str | None  # why it is out of the domain, in words; None when in it


@dataclass(frozen=True)
class DomainDetector:
    description: str  # what the training images are, e.g. "handwritten characters, ..."
    features: Gaussian
    pixels: Gaussian
    feature_threshold: float
    pixel_threshold: float
    norm_buffers: dict[str, Tensor]  # BatchNorm running statistics of the training images

    def to_tensors(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Its statistics as named tensors, and the card section that goes with them."""
        tensors = {f"norm.{k}": v for k, v in self.norm_buffers.items()}
        for prefix, gaussian in (("features", self.features), ("pixels", self.pixels)):
            tensors |= {f"{prefix}.mean": gaussian.mean, f"{prefix}.precision": gaussian.precision}
            tensors[f"{prefix}.scale"] = gaussian.scale
        section = {
            "description": self.description,
            "feature_threshold": self.feature_threshold,
            "pixel_threshold": self.pixel_threshold,
        }
        return tensors, section

    @classmethod
    def from_tensors(cls, section: dict[str, Any], tensors: dict[str, Tensor]) -> DomainDetector:
        """The inverse of :meth:`to_tensors`; ValueError when shapes do not fit together."""

        def gaussian(prefix: str) -> Gaussian:
            mean, precision, scale = (
                tensors[f"{prefix}.{k}"] for k in ("mean", "precision", "scale")
            )
            size = mean.shape[0]
            if mean.dim() != 1 or precision.shape != (size, size) or scale.shape != (size,):
                raise ValueError(f"domain statistics {prefix!r} have inconsistent shapes")
            return Gaussian(mean, precision, scale)

        return cls(
            section["description"],
            gaussian("features"),
            gaussian("pixels"),
            float(section["feature_threshold"]),
            float(section["pixel_threshold"]),
            {k.removeprefix("norm."): v for k, v in tensors.items() if k.startswith("norm.")},
        )

    def feature_model(self, config: BackboneConfig, backbone: Params) -> FewShotNet:
        """The frozen-norm backbone :meth:`check` embeds with: build it once, pass it often
        (as is, or compiled by
        ``models.core.inference.inference_graph(..., features_only=True)``)."""
        return _backbone_module(config, {**backbone, **self.norm_buffers})

    def check(
        self,
        config: BackboneConfig,
        backbone: Params,
        x: Tensor,
        *,
        features: Callable[[Tensor], Tensor] | None = None,
    ) -> list[Verdict]:
        """One verdict per image of ``x`` (``[B, C, S, S]`` in [0, 1]); ``features`` maps
        images to the features of :meth:`feature_model` (None: built for this call)."""
        if features is None:
            model = self.feature_model(config, backbone)
            features = partial(model, features_only=True)
        with torch.no_grad():
            embedded = torch.cat([features(part) for part in x.split(CHUNK)])
        feature_scores = self.features.distance(embedded).tolist()
        stats = pixel_stats(x.float(), config.in_channels)
        pixel_scores = self.pixels.distance(stats).tolist()
        verdicts = []
        for index, (feature_score, pixel_score) in enumerate(
            zip(feature_scores, pixel_scores, strict=True)
        ):
            reasons = []
            if not pixel_score <= self.pixel_threshold:  # NaN is refused, never waved through
                reasons.append(self._pixel_reason(stats[index]))
            if not feature_score <= self.feature_threshold:
                reasons.append(
                    f"the model's features are far from its training images' ({feature_score:.1f}"
                    f" against at most {self.feature_threshold:.1f} for {self.description})"
                )
            verdicts.append(
                Verdict(not reasons, feature_score, pixel_score, "; ".join(reasons) or None)
            )
        return verdicts

    def _pixel_reason(self, stats: Tensor) -> str:
        z = (stats.double() - self.pixels.mean) / self.pixels.scale
        worst = int(z.abs().argmax())
        name = list(PIXEL_STATS.values())[worst]
        mean, scale = float(self.pixels.mean[worst]), float(self.pixels.scale[worst])
        return (
            f"as the model sees it, its {name} is {float(stats[worst]):.2f} "
            f"(training images: {mean:.2f} ± {scale:.2f})"
        )


def domain_path_of(weights_path: Path) -> Path:
    return weights_path.with_name(
        weights_path.name.removesuffix(".safetensors") + ".domain.safetensors"
    )


def save_domain(checkpoint: Checkpoint, detector: DomainDetector, fitted: dict[str, Any]) -> None:
    """Write the detector's statistics beside the checkpoint and its ``domain`` card section
    (description, thresholds, the statistics file's SHA-256, and ``fitted``: how it was fitted)."""
    path = domain_path_of(checkpoint.weights_path)
    tensors, section = detector.to_tensors()
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(contiguous, str(tmp)))
    card = dict(checkpoint.card)
    card["domain"] = {
        **section,
        "channels": card["backbone"]["in_channels"],
        "image_size": card["backbone"]["image_size"],
        "statistics": {"file": path.name, "sha256": sha256_of(path)},
        "fitted": fitted,
    }
    text = json.dumps(card, indent=2) + "\n"
    atomic_write(paths_of(checkpoint.weights_path)[1], lambda tmp: tmp.write_text(text))


def load_domain(checkpoint: Checkpoint) -> DomainDetector | None:
    """The checkpoint's detector, or None when its card has no ``domain`` section."""
    section = checkpoint.card.get("domain")
    if section is None:
        return None
    path = checkpoint.weights_path.with_name(section["statistics"]["file"])
    if not path.is_file() or sha256_of(path) != section["statistics"]["sha256"]:
        raise CheckpointError(f"{path} is missing or does not match the card's domain section")
    return DomainDetector.from_tensors(section, load_file(str(path)))
