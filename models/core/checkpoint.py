"""Checkpoints: weights as safetensors plus a JSON card beside them.

``NAME.safetensors`` holds the tensors; ``NAME.json`` (the card) holds what made them: configs,
data and split, seed, steps, wall time, hardware, metrics, git commit, and the SHA-256 and
tensor shapes of the weights file, so that loading refuses a card that does not describe its
weights. ``NAME.optim.safetensors`` (optional) holds optimizer state for resuming. Every file is
written to a temporary name and renamed into place; the card goes last.
:func:`model_from_checkpoint` is the way from a checkpoint to the network it describes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from models.core.config import BackboneConfig, MetaConfig
from models.core.networks import FewShotNet, WeightsMismatch, load_weights

CARD_FORMAT = "robust-fewshot/checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or its card does not match its weights."""


@dataclass(frozen=True)
class Checkpoint:
    tensors: dict[str, Tensor]
    card: dict[str, Any]
    weights_path: Path

    @property
    def optimizer_path(self) -> Path:
        return optimizer_path_of(self.weights_path)


def paths_of(path: Path | str) -> tuple[Path, Path]:
    """(weights, card) paths for ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    stem = str(path)
    for suffix in (".optim.safetensors", ".safetensors", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return Path(stem + ".safetensors"), Path(stem + ".json")


def optimizer_path_of(weights_path: Path) -> Path:
    return weights_path.with_name(
        weights_path.name.removesuffix(".safetensors") + ".optim.safetensors"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as file:
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are meant to be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _tensor_specs(tensors: dict[str, Tensor]) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(tensors.items())}


def save_checkpoint(
    path: Path | str,
    tensors: dict[str, Tensor],
    card: dict[str, Any],
    optimizer_state: dict[str, Tensor] | None = None,
) -> Path:
    """Write weights, optional optimizer state and the card; return the card's path."""
    weights_path, card_path = paths_of(path)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(weights_path, lambda tmp: save_file(contiguous, str(tmp)))
    if optimizer_state is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in optimizer_state.items()}
        optim_path = optimizer_path_of(weights_path)
        atomic_write(optim_path, lambda tmp: save_file(state, str(tmp)))
    full_card = {
        "format": CARD_FORMAT,
        **card,
        "weights": {
            "file": weights_path.name,
            "sha256": sha256_of(weights_path),
            "tensors": _tensor_specs(contiguous),
        },
    }
    text = json.dumps(full_card, indent=2, sort_keys=False) + "\n"
    atomic_write(card_path, lambda tmp: tmp.write_text(text))
    return card_path


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Load and verify a checkpoint; raise :class:`CheckpointError` with the reason."""
    weights_path, card_path = paths_of(path)
    for needed in (weights_path, card_path):
        if not needed.is_file():
            raise CheckpointError(f"checkpoint file missing: {needed}")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"card {card_path} is not valid JSON: {error}") from error
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise CheckpointError(f"card {card_path} is not a {CARD_FORMAT} card")
    expected = card.get("weights", {})
    if expected.get("sha256") != sha256_of(weights_path):
        raise CheckpointError(
            f"weights {weights_path.name} do not match card {card_path.name} (SHA-256 differs)"
        )
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"cannot read weights {weights_path}: {error}") from error
    if _tensor_specs(tensors) != expected.get("tensors"):
        raise CheckpointError(f"tensors of {weights_path.name} differ from its card")
    return Checkpoint(tensors=tensors, card=card, weights_path=weights_path)


def load_optimizer_state(checkpoint: Checkpoint) -> dict[str, Tensor]:
    if not checkpoint.optimizer_path.is_file():
        raise CheckpointError(f"no optimizer state to resume from: {checkpoint.optimizer_path}")
    return load_file(str(checkpoint.optimizer_path))


def configs_from_card(card: dict[str, Any]) -> tuple[BackboneConfig, MetaConfig]:
    try:
        return BackboneConfig.from_dict(card["backbone"]), MetaConfig.from_dict(card["meta"])
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"card lacks a valid backbone/meta config: {error}") from error


def model_from_checkpoint(checkpoint: Checkpoint) -> tuple[FewShotNet, MetaConfig]:
    """The meta-trained module (batch-stat norm, a fresh head of the card's ``way``) with the
    checkpoint's backbone weights, and the card's meta config."""
    backbone, meta = configs_from_card(checkpoint.card)
    try:
        model = load_weights(FewShotNet(backbone, n_way=meta.way), checkpoint.tensors)
    except WeightsMismatch as error:
        raise CheckpointError(f"weights do not fit the card's backbone config: {error}") from error
    return model, meta


def git_commit() -> str | None:
    """The project's current commit, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def hardware() -> dict[str, Any]:
    """What the run ran on, for the card."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
