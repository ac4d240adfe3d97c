"""Seeded N-way K-shot Q-query episode sampling.

Episode ``i`` of a sampler depends only on ``(seed, i)``, never on what was drawn before, so
training resumes exactly and evaluations are reproducible episode by episode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.data.datasets import ClassImages, DataError


@dataclass(frozen=True)
class Task:
    """One N-way episode: support and query images ``[B, C, H, W]`` in [0, 1], labels ``[B]``."""

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor


class EpisodeSampler:
    def __init__(
        self,
        classes: list[ClassImages],
        *,
        way: int,
        shot: int,
        query: int,
        seed: int,
        split_name: str = "data",
    ):
        if way < 2 or shot < 1 or query < 0:
            raise DataError("episodes need way >= 2, shot >= 1 and query >= 0")
        if len(classes) < way:
            raise DataError(
                f"the {split_name} split has {len(classes)} classes; {way}-way episodes need "
                f"at least {way}"
            )
        small = [c.name for c in classes if len(c.images) < shot + query]
        if small:
            raise DataError(
                f"{len(small)} classes of the {split_name} split have fewer than "
                f"shot + query = {shot + query} images, e.g. {small[:3]}"
            )
        self.classes = classes
        self.way, self.shot, self.query, self.seed = way, shot, query, seed

    def describe(self) -> dict[str, object]:
        """What decides this sampler's episodes (a journal header's ``episodes``)."""
        names = "\n".join(sorted(c.name for c in self.classes)).encode()
        digest = hashlib.sha256(names).hexdigest()[:16]
        return {
            "way": self.way,
            "shot": self.shot,
            "query": self.query,
            "seed": self.seed,
            "classes": f"{len(self.classes)} classes, sha256 {digest}",
        }

    def episode(
        self, index: int, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Task:
        """Episode ``index``: labels ``0..way-1`` in a random class order, pixels in [0, 1]."""
        rng = np.random.default_rng([self.seed, index])
        chosen = rng.choice(len(self.classes), size=self.way, replace=False)
        support, query = [], []
        for cls_index in chosen:
            images = self.classes[cls_index].images
            order = torch.from_numpy(rng.permutation(len(images))[: self.shot + self.query])
            picked = images[order]
            support.append(picked[: self.shot])
            query.append(picked[self.shot :])
        labels = torch.arange(self.way)

        def stack(parts: list[torch.Tensor]) -> torch.Tensor:
            return (torch.cat(parts).to(device=device, dtype=dtype) / 255.0).contiguous()

        return Task(
            x_support=stack(support),
            y_support=labels.repeat_interleave(self.shot).to(device),
            x_query=stack(query),
            y_query=labels.repeat_interleave(self.query).to(device),
        )
