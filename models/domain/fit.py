"""Fitting an out-of-domain detector (:mod:`models.domain.detector`) to a base model's training
data: its statistics, and each score's threshold from held-out in-domain images."""

from __future__ import annotations

import torch
from torch import Tensor

from models.core import BackboneConfig, ConfigError, Params
from models.domain.detector import (
    DomainConfig,
    DomainDetector,
    Gaussian,
    embed,
    norm_buffers,
    pixel_stats,
)

MIN_ABOVE = 3  # held-out images above each threshold, at least (small sets: a lower quantile)


def _held_out_scores(
    train: Tensor,
    groups: list[str],
    folds: int,
    shrinkage: float,
    cap: int,
    generator: torch.Generator,
) -> Tensor:
    """Scores of each fold of groups under a Gaussian fitted on the other folds: what a group the
    statistics never saw scores (a new alphabet, a new class)."""
    names = sorted(set(groups))
    fold_of = {name: index % folds for index, name in enumerate(names)}
    fold = torch.tensor([fold_of[g] for g in groups])
    scores = []
    for k in range(min(folds, len(names))):
        inside = train[fold != k]
        picked = torch.randperm(len(inside), generator=generator)[:cap]
        gaussian = Gaussian.fit(inside[picked], shrinkage)
        scores.append(gaussian.distance(train[fold == k]))
    return torch.cat(scores)


def fit_domain(
    config: BackboneConfig,
    backbone: Params,
    train_x: Tensor,
    train_groups: list[str],
    val_x: Tensor,
    *,
    description: str,
    domain_config: DomainConfig = DomainConfig(),
) -> DomainDetector:
    """Statistics from ``train_x`` (``[N, C, S, S]`` in [0, 1]); each threshold at the
    configured quantile of held-out scores: ``val_x`` (other classes) under the full fit, and
    each fold of training groups (``train_groups[i]`` is image i's alphabet or class) under a fit
    on the other folds. Seeded: the same inputs give the same detector. ConfigError when a
    statistic or threshold is not finite (e.g. a diverged backbone)."""
    generator = torch.Generator().manual_seed(0)
    cap, shrinkage = domain_config.reference_images, domain_config.shrinkage
    reference = train_x[torch.randperm(len(train_x), generator=generator)[:cap]].float()
    buffers = norm_buffers(config, backbone, reference)
    fitted = []
    for describe in (
        lambda x: embed(config, backbone, buffers, x),
        lambda x: pixel_stats(x.float(), config.in_channels),
    ):
        train = describe(train_x)
        picked = torch.randperm(len(train), generator=generator)[:cap]
        gaussian = Gaussian.fit(train[picked], shrinkage)
        folds = _held_out_scores(
            train, train_groups, domain_config.folds, shrinkage, cap, generator
        )
        held_out = torch.cat([gaussian.distance(describe(val_x)), folds])
        # few held-out images cannot place a 0.1% tail: keep at least MIN_ABOVE of them above
        quantile = min(domain_config.quantile, 1 - MIN_ABOVE / len(held_out))
        threshold = domain_config.margin * float(torch.quantile(held_out, quantile))
        fitted.append((gaussian, threshold))
    (features, feature_threshold), (pixels, pixel_threshold) = fitted
    numbers = [features.mean, features.precision, pixels.mean, pixels.precision]
    numbers += [torch.tensor([feature_threshold, pixel_threshold]), *buffers.values()]
    if not all(bool(torch.isfinite(t).all()) for t in numbers):
        raise ConfigError("the domain statistics are not finite: the backbone may have diverged")
    return DomainDetector(
        description, features, pixels, feature_threshold, pixel_threshold, buffers
    )
