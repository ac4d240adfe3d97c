"""Meta-train a base model on a user's own classes (ADML), resumably, and package it.

The classes are split by name into train / validation / test; training is ADML on the train
classes; the out-of-domain detector is fitted on train (statistics) and validation (thresholds);
the card's metrics are clean and worst-case accuracy on test-class episodes after the service's
adaptation. A :class:`TrainRun` snapshots to bytes (weights, optimizer, state) so a run that a
dying worker left behind resumes from its last snapshot, drawing the same tasks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import save
from torch import Tensor

from models.core import (
    AdaptConfig,
    BackboneConfig,
    ConfigError,
    FewShotNet,
    MetaConfig,
)
from models.data import ClassImages, decode_image
from models.domain import fit_domain
from models.evaluation import evaluate_episodes
from models.meta import MetaTrainRun, TrainState, episodes_for
from models.service.blobs import LabelledImages, read_safetensors

MIN_CLASSES = 20  # 10+ to train on, 5 to validate, 5 to test 5-way episodes
MIN_IMAGES_PER_CLASS = 5  # 1 support + 4 query images per class in an episode


@dataclass(frozen=True)
class BaseTrainJob:
    """Settings of a meta-training job; the API builds it, the worker runs it."""

    name: str  # the tenant's name for the base model
    channels: int  # 1 (grayscale) or 3 (RGB)
    image_size: int  # side of the square images the model sees
    eps: float  # L-inf budget of the FGSM copies (training and adaptation)
    iterations: int  # meta-steps (each: meta_batch tasks)
    split: dict[str, list[str]]  # "train" / "val" / "test" -> class names
    description: str = "the uploaded images"  # what the images are, shown to users
    width: int = 32  # Conv-4 channels per block: half of Omniglot's 64, CPU-friendly
    meta_batch: int = 4  # tasks per meta-step
    validate_every: int = 50  # meta-steps between validations and snapshots
    eval_episodes: int = 20  # 5-way 1-shot test episodes behind the card's metrics
    attacks: tuple[str, ...] = ("fgsm", "pgd-10", "apgd-ce-20")  # test-episode suite
    seed: int = 0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError("channels must be 1 or 3")
        if not 16 <= self.image_size <= 96:
            raise ConfigError("image_size must be in [16, 96]")
        if not 0 <= self.eps <= 0.3:
            raise ConfigError("eps must be in [0, 0.3]")
        if self.iterations < 1:
            raise ConfigError("iterations must be >= 1")

    @property
    def backbone(self) -> BackboneConfig:
        return BackboneConfig(self.channels, self.image_size, self.width)

    @property
    def meta(self) -> MetaConfig:
        return MetaConfig(
            way=5, shot=1, query=4, meta_batch=self.meta_batch, eps=self.eps, eps_ramp=100
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BaseTrainJob:
        fields = json.loads(text)
        return cls(**{**fields, "attacks": tuple(fields["attacks"])})


def split_classes(names: list[str], seed: int = 0) -> dict[str, list[str]]:
    """Shuffle class names with ``seed``: ~15% (at least 5) test, as many validation, rest
    train."""
    if len(names) < MIN_CLASSES:
        raise ConfigError(f"{len(names)} classes; meta-training needs at least {MIN_CLASSES}")
    order = [sorted(names)[i] for i in np.random.default_rng(seed).permutation(len(names))]
    held = max(5, round(0.15 * len(names)))
    return {
        "test": sorted(order[:held]),
        "val": sorted(order[held : 2 * held]),
        "train": sorted(order[2 * held :]),
    }


def decode_classes(
    classes: dict[str, list[tuple[str, bytes]]], *, channels: int, size: int, **limits: Any
) -> LabelledImages:
    """Class name -> [(source, encoded image)] as uint8 images with labels (in class order);
    ``limits``: max_pixels, formats (as :func:`models.data.decode.decode_image`)."""
    pixels, labels = [], []
    for index, files in enumerate(classes.values()):
        for source, data in files:
            pixels.append(decode_image(data, channels=channels, size=size, source=source, **limits))
            labels.append(index)
    return LabelledImages(torch.from_numpy(np.stack(pixels)), torch.tensor(labels), list(classes))


class TrainRun:
    """One meta-training run over ``images`` (all classes, labels index ``images.classes``)."""

    def __init__(self, job: BaseTrainJob, images: LabelledImages, device: torch.device):
        self.job, self.device = job, device
        by_name = {
            name: ClassImages(name, name, images.images[images.labels == index])
            for index, name in enumerate(images.classes)
        }
        self.parts = {part: [by_name[n] for n in names] for part, names in job.split.items()}
        train = episodes_for(self.parts["train"], job.meta, seed=job.seed, split_name="train")
        self.run = MetaTrainRun(job.backbone, job.meta, train, seed=job.seed, device=device)

    @property
    def model(self) -> FewShotNet:
        return self.run.model

    @property
    def state(self) -> TrainState:
        return self.run.state

    def evaluate(self, part: str, episodes: int, attacks, progress=None):
        return evaluate_episodes(
            self.job.backbone,
            self.run.backbone_params(),
            episodes_for(self.parts[part], self.job.meta, seed=self.job.seed + 1, split_name=part),
            episodes=episodes,
            adapt_config=AdaptConfig(eps=self.job.eps),
            eps_grid=(self.job.eps,),
            attacks=attacks,
            blackbox=None,
            sanity=False,
            device=self.device,
            on_episode=progress,
        )

    def snapshot(self) -> bytes:
        tensors = {f"model.{k}": v for k, v in self.run.backbone_params().items()}
        tensors |= {f"optim.{k}": v for k, v in self.run.optimizer_tensors().items()}
        cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        return save(cpu, metadata={"state": json.dumps(asdict(self.state))})

    def restore(self, data: bytes) -> None:
        tensors, metadata = read_safetensors(data)
        self.run.restore(
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")},
            TrainState(**json.loads(metadata["state"])),
        )

    def train(self, on_step: Callable[[int], None], save_snapshot: Callable[[bytes], None]) -> None:
        def validate(_: FewShotNet) -> dict[str, Any]:
            result = self.evaluate("val", 10, ("fgsm",))
            return {
                "val_clean": round(result.cell("clean", 0.0).mean, 4),
                f"val_fgsm@{self.job.eps:g}": round(result.cell("fgsm", self.job.eps).mean, 4),
            }

        self.run.train(
            self.job.iterations,
            validate_every=self.job.validate_every,
            validate=validate,
            save=lambda _: save_snapshot(self.snapshot()),
            on_step=lambda iteration, _: on_step(iteration),
        )

    def package(self, on_episode: Callable[[int, int], None]) -> tuple[dict[str, Tensor], dict]:
        """The base model's tensors (backbone + ``domain.*``) and card."""
        job, params = self.job, self.run.backbone_params()
        pixels = {
            p: torch.cat([c.images for c in cs]).float() / 255 for p, cs in self.parts.items()
        }
        groups = [c.name for c in self.parts["train"] for _ in range(len(c.images))]
        detector = fit_domain(
            job.backbone,
            params,
            pixels["train"],
            groups,
            pixels["val"],
            description=job.description,
        )
        result = self.evaluate("test", job.eval_episodes, job.attacks, on_episode)
        clean, worst = result.cell("clean", 0.0), result.cell("worst", job.eps)
        domain_tensors, domain_section = detector.to_tensors()
        card = {
            "kind": "meta-trained",
            "algo": "adml",
            "backbone": asdict(job.backbone),
            "meta": asdict(job.meta),
            "data": {"kind": "upload", "invert": False, "split": job.split},
            "iterations": self.state.iteration,
            "wall_time_s": round(self.state.wall_time_s, 1),
            "validation": self.state.validation,
            "metrics": {
                "test_clean": round(clean.mean, 4),
                "test_clean_ci95": round(clean.ci95, 4),
                f"test_worst@{job.eps:g}": round(worst.mean, 4),
                f"test_worst_ci95@{job.eps:g}": round(worst.ci95, 4),
                "test_attacks": list(result.attacks),
                "test_episodes": job.eval_episodes,
            },
            "domain": domain_section,
        }
        tensors = {k: v.detach().cpu() for k, v in params.items()}
        return tensors | {f"domain.{k}": v for k, v in domain_tensors.items()}, card
