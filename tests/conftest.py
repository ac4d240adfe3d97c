"""Shared fixtures: tiny configs, synthetic tasks, the real Omniglot data when present."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from models.core import BackboneConfig
from models.data import Task

pytest_plugins = ["tests.service_fixtures"]

# what the service keeps on disk (the artifact store's default folder, the embedded Redis of
# `fewshot serve`) goes to a folder of this test session, never the user's data directory
SESSION_DATA_DIR = None if "FEWSHOT_DATA_DIR" in os.environ else tempfile.mkdtemp(prefix="fewshot-")
if SESSION_DATA_DIR is not None:
    os.environ["FEWSHOT_DATA_DIR"] = SESSION_DATA_DIR


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SESSION_DATA_DIR is not None:
        shutil.rmtree(SESSION_DATA_DIR)


OMNIGLOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "omniglot"
TINY = BackboneConfig(in_channels=1, image_size=8, width=4, blocks=2)


@pytest.fixture
def omniglot_path() -> Path:
    if not any(OMNIGLOT.glob("*.zip")):
        pytest.skip(f"Omniglot zips not found at {OMNIGLOT} (see ../shared/DESIGN.md)")
    return OMNIGLOT


def synthetic_task(
    way: int, shot: int, query: int, *, size: int = 8, seed: int = 0, dtype=torch.float32
) -> Task:
    """A task whose classes are noisy copies of random binary templates, pixels in [0.1, 0.9]."""
    gen = torch.Generator().manual_seed(seed)
    templates = (torch.rand(way, 1, size, size, generator=gen) > 0.5).to(dtype)

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(way).repeat_interleave(per_class)
        noise = 0.15 * torch.randn(len(y), 1, size, size, generator=gen, dtype=dtype)
        return (0.1 + 0.8 * templates[y] + noise).clamp(0.1, 0.9), y

    xs, ys = draw(shot)
    xq, yq = draw(query)
    return Task(xs, ys, xq, yq)
