"""The meta-trained initializations the service adapts: checkpoints found in one folder."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import Tensor

from models.core import (
    BackboneConfig,
    CheckpointError,
    MetaConfig,
    inference_graph,
    load_checkpoint,
)
from models.data import InputSpec
from models.domain import DomainDetector, Verdict, load_domain
from models.service.blobs import ArtifactError, read_safetensors
from models.service.jobs import MAX_AUGMENT

logger = logging.getLogger(__name__)
MAX_RECIPE_STEPS = 200  # a card's one-shot recipe: at most the API's default step limit


@dataclass(frozen=True)
class BaseModel:
    name: str  # the checkpoint's file stem
    backbone: BackboneConfig
    meta: MetaConfig
    spec: InputSpec
    tensors: dict[str, Tensor]
    card: dict[str, Any]
    domain: DomainDetector | None = None  # None: the card has no out-of-domain detector

    @property
    def identity(self) -> str:
        """Which weights these are: a tenant model's training job, a checkpoint's SHA-256."""
        return str(self.card.get("job_id") or self.card.get("weights", {}).get("sha256") or "")

    def __post_init__(self) -> None:
        self.one_shot_adaptation  # noqa: B018 - a bad recipe stops loading, not requests

    @property
    def one_shot_adaptation(self) -> tuple[int, int] | None:
        """``(augment, steps)`` measured for this initialization's robust adaptation at one
        image per class (the card's ``service_adaptation``), or None: none was measured.
        ValueError when the card's recipe is not one the API could run."""
        recipe = self.card.get("service_adaptation", {}).get("one_image_per_class")
        if recipe is None:
            return None
        augment, steps = recipe.get("augment"), recipe.get("steps")
        whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (augment, steps))
        if not whole or not 0 <= augment <= MAX_AUGMENT or not 1 <= steps <= MAX_RECIPE_STEPS:
            raise ValueError(
                f"service_adaptation.one_image_per_class must hold whole numbers augment "
                f"(0-{MAX_AUGMENT}) and steps (1-{MAX_RECIPE_STEPS}), got {recipe}"
            )
        return augment, steps

    def check_domain(self, images: Tensor) -> list[Verdict] | None:
        """A verdict per uint8 image ``[n, C, S, S]``, or None without a detector."""
        if self.domain is None:
            return None
        return self.domain.check(
            self.backbone, {}, images.float() / 255.0, features=self._domain_features
        )

    @cached_property
    def _domain_features(self) -> Callable[[Tensor], Tensor] | None:
        """The detector's backbone, built and compiled once (see ``inference_graph``)."""
        if self.domain is None:
            return None
        backbone = {k: v for k, v in self.tensors.items() if not k.startswith("head.")}
        model = self.domain.feature_model(self.backbone, backbone)
        return inference_graph(model, features_only=True)

    def domain_summary(self) -> dict[str, Any]:
        """What this model knows: its training images, and whether it can tell foreign ones."""
        section = self.card.get("domain", {})
        return {
            "description": section.get("description", "not recorded"),
            "channels": self.spec.channels,
            "image_size": self.spec.size,
            "detector": self.domain is not None,
        }

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/base-models`` shows of it."""
        return {
            "name": self.name,
            "algorithm": self.meta.algo,
            "input": {
                "channels": self.spec.channels,
                "size": self.spec.size,
                "inverted": self.spec.invert,
                "pixel_range": [0.0, 1.0],
            },
            "meta_trained": {
                "way": self.meta.way,
                "shot": self.meta.shot,
                "eps": self.meta.eps,
                "iterations": self.card.get("iterations"),
                "data": {k: self.card.get("data", {}).get(k) for k in ("kind", "split")},
            },
            "domain": self.domain_summary(),
            "metrics": self.card.get("metrics", {}),
            "one_shot_adaptation": None
            if self.one_shot_adaptation is None
            else dict(zip(("augment", "steps"), self.one_shot_adaptation, strict=True)),
        }


class UnknownBaseModel(LookupError):
    pass


@dataclass(frozen=True)
class BaseModels:
    by_name: dict[str, BaseModel]
    default: str | None

    def get(self, name: str | None) -> BaseModel:
        chosen = name or self.default
        if chosen is None or chosen not in self.by_name:
            known = ", ".join(sorted(self.by_name)) or "none installed"
            raise UnknownBaseModel(f"unknown base model {chosen!r} (known: {known})")
        return self.by_name[chosen]


def load_base_models(folder: Path, default: str | None = None) -> BaseModels:
    """Every valid checkpoint in ``folder``; a broken one is an error, not skipped silently."""
    found = {}
    for card_path in sorted(folder.glob("*.json")):
        checkpoint = load_checkpoint(card_path)
        card = checkpoint.card
        try:
            backbone = BackboneConfig.from_dict(card["backbone"])
            meta = MetaConfig.from_dict(card["meta"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{card_path}: not a meta-trained checkpoint: {error}") from error
        name = card_path.name.removesuffix(".json")
        try:
            found[name] = BaseModel(
                name,
                backbone,
                meta,
                InputSpec.from_card(card),
                checkpoint.tensors,
                card,
                load_domain(checkpoint),
            )
        except (AttributeError, ValueError) as error:  # a recipe that is not a mapping, or bad
            raise CheckpointError(f"{card_path}: {error}") from error
    if default is not None and default not in found:
        raise CheckpointError(f"default base model {default!r} is not in {folder}")
    if default is None:
        adml = [name for name, model in found.items() if model.meta.algo == "adml"]
        default = (adml or sorted(found) or [None])[0]
    logger.info("base models: %s (default %s)", sorted(found), default)
    return BaseModels(found, default)


def encode_base_model(tensors: dict[str, Tensor], card: dict[str, Any]) -> bytes:
    """A tenant's base model as one safetensors blob: backbone and ``domain.*`` tensors, the
    card in the metadata."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return save(cpu, metadata={"card": json.dumps(card)})


def decode_base_model(name: str, data: bytes) -> BaseModel:
    """The inverse of :func:`encode_base_model`; CheckpointError when it does not read back."""
    try:
        tensors, metadata = read_safetensors(data)
        card = json.loads(metadata["card"])
        domain_tensors = {k[7:]: v for k, v in tensors.items() if k.startswith("domain.")}
        backbone = {k: v for k, v in tensors.items() if not k.startswith("domain.")}
        return BaseModel(
            name,
            BackboneConfig.from_dict(card["backbone"]),
            MetaConfig.from_dict(card["meta"]),
            InputSpec.from_card(card),
            backbone,
            card,
            DomainDetector.from_tensors(card["domain"], domain_tensors) if domain_tensors else None,
        )
    except (ArtifactError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"stored base model {name!r} does not read back: {error}") from error
