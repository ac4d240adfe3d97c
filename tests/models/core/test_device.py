"""The one device picker of the CLI and the worker: CUDA only where there is CUDA."""

from __future__ import annotations

import pytest
import torch

from models.core import ConfigError, pick_device


def test_auto_and_named_devices(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pick_device("cuda:0")
    with pytest.raises(ConfigError, match="unknown device"):
        pick_device("abacus")
