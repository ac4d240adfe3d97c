"""What travels through Redis as bytes: support sets and adapted weights, as safetensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import Tensor

from models.core import (
    BackboneConfig,
    FewShotNet,
    WeightsMismatch,
    cpu_fast_layout,
    load_weights,
)


class ArtifactError(ValueError):
    """Stored bytes that do not decode to what they should be."""


@dataclass(frozen=True)
class LabelledImages:
    """Images uint8 ``[n, C, S, S]`` with label indices into ``classes``."""

    images: Tensor
    labels: Tensor  # int64 [n]
    classes: list[str]


def read_safetensors(data: bytes) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"stored artifact is not valid safetensors: {error}") from error
    return tensors, metadata


def encode_images(support: LabelledImages, validation: LabelledImages | None = None) -> bytes:
    tensors = {"images": support.images, "labels": support.labels}
    if validation is not None:
        tensors |= {"val_images": validation.images, "val_labels": validation.labels}
    return save(
        {k: v.contiguous() for k, v in tensors.items()},
        metadata={"classes": json.dumps(support.classes)},
    )


def decode_images(data: bytes) -> tuple[LabelledImages, LabelledImages | None]:
    tensors, metadata = read_safetensors(data)
    classes = json.loads(metadata["classes"])
    support = LabelledImages(tensors["images"], tensors["labels"], classes)
    if "val_images" not in tensors:
        return support, None
    return support, LabelledImages(tensors["val_images"], tensors["val_labels"], classes)


def encode_weights(state: dict[str, Tensor], info: dict[str, Any]) -> bytes:
    """A deployed model's state dict (frozen BatchNorm statistics included) and its info."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return save(cpu, metadata={"info": json.dumps(info)})


def decode_weights(data: bytes) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, metadata = read_safetensors(data)
    return tensors, json.loads(metadata.get("info", "{}"))


def load_adapted(data: bytes, device: torch.device) -> tuple[FewShotNet, dict[str, Any]]:
    """An adapted model from its stored weights, in eval mode, and its info."""
    state, info = decode_weights(data)
    model = FewShotNet(
        BackboneConfig.from_dict(info["backbone"]), n_way=len(info["classes"]), frozen_norm=True
    )
    try:
        load_weights(model, state, head=True)
    except WeightsMismatch as error:
        raise ArtifactError(f"stored weights do not fit their model: {error}") from error
    return cpu_fast_layout(model.to(device)).eval(), info
