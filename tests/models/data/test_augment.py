"""Random affine copies of the support set, and adaptation on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.core import AdaptConfig, FewShotNet, backbone_params
from models.data import MAX_ROTATION_DEG, MAX_SHIFT, affine_copies
from models.meta import adapt
from tests.conftest import TINY, synthetic_task

JOURNAL = Path(__file__).parents[3] / "docs/robustness/600/adml-v2_1shot_adversarial.json.jsonl"


def _blob(size: int = 28) -> torch.Tensor:
    """One image: a 4 x 4 white square at the centre of a black one, ``[1, 1, S, S]``."""
    x = torch.zeros(1, 1, size, size)
    x[..., size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] = 1.0
    return x


def _centre(x: torch.Tensor) -> torch.Tensor:
    """Centres of mass ``[B, 2]`` (row, column) in pixels."""
    grid = torch.arange(x.shape[-1], dtype=x.dtype)
    mass = x.sum(dim=(1, 2, 3))
    rows = (x.sum(dim=(1, 3)) * grid).sum(1) / mass
    cols = (x.sum(dim=(1, 2)) * grid).sum(1) / mass
    return torch.stack([rows, cols], 1)


def test_copies_come_in_order_within_range_and_reproducibly():
    x = torch.cat([_blob(), 1 - _blob()])  # white on black, black on white
    copies = affine_copies(x, 3, generator=torch.Generator().manual_seed(0))
    assert copies.shape == (6, 1, 28, 28) and copies.dtype == x.dtype
    assert copies.min() >= 0 and copies.max() <= 1
    assert (copies - x.repeat(3, 1, 1, 1)).abs().amax(dim=(1, 2, 3)).min() > 0.1  # each moved
    again = affine_copies(x, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(copies, again)
    assert not torch.equal(copies, affine_copies(x, 3, generator=torch.Generator().manual_seed(1)))
    # row k * B + i is copy k of image i: each keeps its image's background (the border)
    corners = copies[:, 0, 0, 0]
    assert torch.allclose(corners, torch.tensor([0.0, 1.0]).repeat(3), atol=1e-6)
    # a centred blob moves at most MAX_SHIFT of the side (rotation and scale keep the centre)
    many = affine_copies(_blob(), 200, generator=torch.Generator().manual_seed(2))
    moved = (_centre(many) - _centre(_blob())).abs()
    assert moved.max() <= MAX_SHIFT * 28 * 1.05
    assert moved.max() > MAX_SHIFT * 28 * 0.5  # the range is used, not a no-op
    mass = many.sum(dim=(1, 2, 3)) / _blob().sum()
    assert mass.min() > 0.78 and mass.max() < 1.24  # scaled by at most 10% per side


def _orientation_deg(x: torch.Tensor) -> torch.Tensor:
    """The principal axis of each image's mass ``[B]``, degrees from the width axis."""
    grid = torch.arange(x.shape[-1], dtype=x.dtype)
    mass = x[:, 0]
    total = mass.sum(dim=(1, 2))
    rows = (mass.sum(2) * grid).sum(1) / total
    cols = (mass.sum(1) * grid).sum(1) / total
    dr, dc = grid[None, :, None] - rows[:, None, None], grid[None, None, :] - cols[:, None, None]
    mu20 = (mass * dc**2).sum(dim=(1, 2))
    mu02 = (mass * dr**2).sum(dim=(1, 2))
    mu11 = (mass * dr * dc).sum(dim=(1, 2))
    return torch.rad2deg(0.5 * torch.atan2(2 * mu11, mu20 - mu02))


def test_copies_turn_by_at_most_the_rotation_range():
    bar = torch.zeros(1, 1, 28, 28)
    bar[..., 13:15, 6:22] = 1.0  # a horizontal bar: its axis lies at 0 degrees
    assert _orientation_deg(bar).abs().item() < 1e-3
    turned = _orientation_deg(affine_copies(bar, 200, generator=torch.Generator().manual_seed(3)))
    assert turned.abs().max() <= MAX_ROTATION_DEG + 1.0
    assert turned.abs().max() > MAX_ROTATION_DEG / 2  # the range is used


def test_a_blank_image_stays_blank_and_zero_copies_are_none():
    for value in (0.0, 1.0):
        blank = torch.full((2, 3, 8, 8), value)
        assert torch.allclose(affine_copies(blank, 2), torch.full((4, 3, 8, 8), value), atol=1e-6)
    assert affine_copies(_blob(), 0).shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="copies"):
        affine_copies(_blob(), -1)


def _adapted(config: AdaptConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3)
    task = synthetic_task(3, 1, 2, seed=1)
    torch.manual_seed(seed)
    return adapt(
        TINY, backbone_params(model), task.x_support, task.y_support, n_way=3, adapt_config=config
    )


def test_adaptation_on_augmented_copies_is_another_and_reproducible():
    plain = _adapted(AdaptConfig(steps=3))
    augmented = _adapted(AdaptConfig(steps=3, augment=4))
    assert plain.keys() == augmented.keys()
    assert any(not torch.allclose(plain[k], augmented[k]) for k in plain)
    again = _adapted(AdaptConfig(steps=3, augment=4))
    assert all(torch.equal(augmented[k], again[k]) for k in augmented)
    other_draws = _adapted(AdaptConfig(steps=3, augment=4), seed=1)
    assert any(not torch.equal(augmented[k], other_draws[k]) for k in augmented)
    # with augment=0 the steps draw nothing (journaled evaluations resume bit for bit): the
    # random state after 3 steps is the one after none (building the module draws its own)
    assert _state_after(AdaptConfig(steps=3)) == _state_after(AdaptConfig(steps=0))
    assert _state_after(AdaptConfig(steps=3, augment=1)) != _state_after(AdaptConfig(steps=0))


def _state_after(config: AdaptConfig) -> bytes:
    model = FewShotNet(TINY, n_way=3)
    task = synthetic_task(3, 1, 2, seed=1)
    torch.manual_seed(5)
    adapt(
        TINY, backbone_params(model), task.x_support, task.y_support, n_way=3, adapt_config=config
    )
    return torch.get_rng_state().numpy().tobytes()


def test_the_affine_copies_get_fgsm_copies_too(monkeypatch):
    from models.meta import adaptation as adapt_module

    attacked: list[int] = []

    def counting_fgsm(model, x, y, **kwargs):
        attacked.append(len(x))
        return adapt_module.fgsm.__wrapped__(model, x, y, **kwargs)

    counting_fgsm.__wrapped__ = adapt_module.fgsm
    monkeypatch.setattr(adapt_module, "fgsm", counting_fgsm)
    _adapted(AdaptConfig(steps=2, augment=4))
    assert attacked == [3 * (1 + 4)] * 2  # 3 support images and their 12 copies, each step


def test_journals_from_before_augment_still_match_the_default_protocol():
    assert "augment" not in AdaptConfig().protocol()
    assert AdaptConfig(augment=4).protocol()["augment"] == 4
    assert AdaptConfig.from_dict(AdaptConfig(augment=4).protocol()) == AdaptConfig(augment=4)
    with pytest.raises(ValueError, match="augment"):
        AdaptConfig(augment=65)
    if not JOURNAL.exists():
        pytest.skip(f"no committed journal at {JOURNAL}")
    header = json.loads(JOURNAL.read_text().splitlines()[0])["header"]
    assert header["adapt"] == AdaptConfig(eps=0.1).protocol()  # it resumes: same protocol
