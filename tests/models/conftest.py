"""Fixtures shared by the attack tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.core import FewShotNet
from tests.conftest import TINY, synthetic_task


@pytest.fixture(scope="session")
def trained() -> tuple[FewShotNet, torch.Tensor, torch.Tensor]:
    """A tiny frozen-norm classifier trained to high accuracy on a 4-way synthetic task.

    float64: in float32 the trained weights, and so the accuracies the tests below compare,
    moved with the summation order (thread count, conv kernels); in float64 they do not."""
    torch.manual_seed(0)
    task = synthetic_task(4, 30, 20, seed=1, dtype=torch.float64)
    model = FewShotNet(TINY, n_way=4, frozen_norm=True).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(task.x_support), task.y_support).backward()
        optimizer.step()
    model.eval()
    optimizer.zero_grad(set_to_none=True)
    return model, task.x_query, task.y_query
