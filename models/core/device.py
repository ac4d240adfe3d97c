"""The torch device a process runs on, from a setting or an option."""

from __future__ import annotations

import torch

from models.core.config import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when there is one, else the CPU; any other torch device name as given.
    ConfigError for an unknown name, or a CUDA device where CUDA is not available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {name!r}: {error}") from error
