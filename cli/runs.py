"""What the CLI commands assemble from the ML core: data, samplers, cards, validation."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch

from models.checkpoint import Checkpoint, CheckpointError, git_commit, hardware, utc_now
from models.config import AdaptConfig, BackboneConfig, ConfigError, MetaConfig
from models.data import ClassImages, DataError, GroupSplit, load_image_folder, load_omniglot
from models.episodes import EpisodeSampler
from models.evaluation import evaluate_episodes
from models.networks import FewShotNet, backbone_params
from models.training import TrainState

DatasetKind = Literal["omniglot", "folder"]
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO_ROOT.parent / "shared" / "data" / "omniglot"


def default_data_path() -> Path | None:
    """``../shared/data/omniglot`` beside the checkout (or the working directory), if present."""
    for candidate in (Path("../shared/data/omniglot"), SHARED_OMNIGLOT):
        if candidate.exists():
            return candidate.resolve()
    return None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {name!r}: {error}") from error


def load_classes(
    kind: DatasetKind, path: Path | None, backbone: BackboneConfig
) -> list[ClassImages]:
    if path is None:
        raise DataError("no data path given and ../shared/data/omniglot does not exist")
    if kind == "omniglot":
        if backbone.in_channels != 1:
            raise ConfigError("Omniglot is grayscale: use --channels 1")
        return load_omniglot(path, image_size=backbone.image_size)
    return load_image_folder(path, channels=backbone.in_channels, image_size=backbone.image_size)


def data_record(kind: DatasetKind, path: Path, classes: int, split: GroupSplit, rotations: bool):
    return {
        "kind": kind,
        "path": str(path),
        "classes": classes,
        "rotations": rotations,
        "split": split.to_dict(),
    }


def split_from_card(card: dict[str, Any]) -> GroupSplit:
    split = card["data"]["split"]
    return GroupSplit(
        tuple(split["train"]), tuple(split["val"]), tuple(split["test"]), split["seed"]
    )


def training_card(
    backbone: BackboneConfig,
    meta: MetaConfig,
    data: dict[str, Any],
    state: TrainState,
    *,
    seed: int,
    iterations: int,
    device: torch.device,
    command: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "meta-trained",
        "algo": meta.algo,
        "backbone": asdict(backbone),
        "meta": asdict(meta),
        "data": data,
        "seed": seed,
        "iterations_planned": iterations,
        "iterations": state.iteration,
        "wall_time_s": round(state.wall_time_s, 2),
        "device": str(device),
        "hardware": hardware(),
        "git_commit": git_commit(),
        "created": utc_now(),
        "command": " ".join(command if command is not None else ["fewshot", *sys.argv[1:]]),
        "validation": state.validation,
        "metrics": state.validation[-1] if state.validation else {},
    }


def configs_from_card(card: dict[str, Any]) -> tuple[BackboneConfig, MetaConfig]:
    try:
        return BackboneConfig.from_dict(card["backbone"]), MetaConfig.from_dict(card["meta"])
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"card lacks a valid backbone/meta config: {error}") from error


def model_from_checkpoint(checkpoint: Checkpoint) -> tuple[FewShotNet, MetaConfig]:
    """The meta-trained module (batch-stat norm) with the checkpoint's backbone weights."""
    backbone, meta = configs_from_card(checkpoint.card)
    model = FewShotNet(backbone, n_way=meta.way)
    expected = {k: tuple(v.shape) for k, v in backbone_params(model).items()}
    found = {k: tuple(v.shape) for k, v in checkpoint.tensors.items()}
    if expected != found:
        raise CheckpointError(
            f"weights do not fit the card's backbone config: expected {sorted(expected)} "
            f"with their shapes, found {sorted(found)}"
        )
    model.load_state_dict(checkpoint.tensors, strict=False)
    return model, meta


def validation_fn(
    backbone: BackboneConfig,
    meta: MetaConfig,
    sampler: EpisodeSampler,
    episodes: int,
    device: torch.device,
):
    """Validation during training: service-style adaptation, clean and PGD-10 at the train eps."""
    adapt_config = AdaptConfig(eps=meta.eps if meta.eps > 0 else 0.1)

    def validate(model: FewShotNet) -> dict[str, Any]:
        result = evaluate_episodes(
            backbone,
            backbone_params(model),
            sampler,
            episodes=episodes,
            adapt_config=adapt_config,
            head_init=meta.head_init,
            eps_grid=(adapt_config.eps,),
            pgd_steps=10,
            sanity=False,
            device=device,
        )
        clean = result.cell("clean", 0.0)
        robust = result.cell("pgd", adapt_config.eps)
        return {
            "val_clean": round(clean.mean, 4),
            "val_clean_ci95": round(clean.ci95, 4),
            f"val_pgd10@{adapt_config.eps:g}": round(robust.mean, 4),
            "val_episodes": episodes,
        }

    return validate
