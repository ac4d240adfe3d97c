"""Random affine copies of images: the augmented support set of service-time adaptation.

Each copy is its image rotated, scaled and shifted by a small random amount (uniform in the
ranges below), resampled bilinearly with the border pixels extended, so the background stays
the background whatever its colour (where the border is background, as in a drawing with a
margin). Ranges are those of drawings of one character by
different people at the scale the models see (Omniglot at 28 x 28: a shift of up to 10% is
about 3 pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_ROTATION_DEG = 15.0  # each copy turns by at most this, either way
MAX_SCALE = 0.1  # each copy is scaled by a factor in [1 - MAX_SCALE, 1 + MAX_SCALE]
MAX_SHIFT = 0.1  # the centre moves by at most this fraction of the side, on each axis


def affine_copies(x: Tensor, copies: int, *, generator: torch.Generator | None = None) -> Tensor:
    """``copies`` random affine copies of every image.

    Args:
        x: images ``[B, C, H, W]``, values in [0, 1].
        copies: copies per image (0 gives an empty batch).
        generator: the random draws' source (default: torch's global one).

    Returns:
        ``[copies * B, C, H, W]`` in [0, 1], same dtype and device as ``x``; copy ``k`` of
        image ``i`` is row ``k * B + i`` (labels: ``y.repeat(copies)``).
    """
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    batch = x.shape[0] * copies
    if batch == 0:
        return x[:0]
    draws = torch.rand(batch, 4, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
    angle = draws[:, 0] * math.radians(MAX_ROTATION_DEG)
    scale = 1 + draws[:, 1] * MAX_SCALE
    shift = draws[:, 2:] * (2 * MAX_SHIFT)  # grid coordinates span [-1, 1]: a side is 2
    # the content moves as q -> scale * R(angle) q + shift; sampling needs the inverse map
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    offset = -(inverse @ shift.unsqueeze(2))
    theta = torch.cat([inverse, offset], 2)
    images = x.repeat(copies, 1, 1, 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.clamp(0.0, 1.0)
