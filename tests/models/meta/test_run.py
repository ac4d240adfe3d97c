"""A meta-training run: seeded start, warm start, and a resume that ends where an unbroken run
ends."""

from __future__ import annotations

import copy

import pytest
import torch

from models.core import FewShotNet, MetaConfig, WeightsMismatch, backbone_params
from models.data import ClassImages
from models.meta import MetaTrainRun, TrainState, episodes_for
from tests.conftest import TINY

META = MetaConfig(way=3, shot=1, query=2, inner_steps=1, meta_batch=2, eps=0.05)


def _classes(n: int = 5) -> list[ClassImages]:
    generator = torch.Generator().manual_seed(0)
    return [
        ClassImages(f"c{k}", f"c{k}", torch.randint(0, 256, (4, 1, 8, 8), generator=generator))
        for k in range(n)
    ]


def _run(seed: int = 0) -> MetaTrainRun:
    sampler = episodes_for(_classes(), META, seed=seed, split_name="train")
    return MetaTrainRun(TINY, META, sampler, seed=seed, device=torch.device("cpu"))


def test_episodes_take_the_runs_shape():
    sampler = episodes_for(_classes(), META, seed=3, split_name="train")
    assert (sampler.way, sampler.shot, sampler.query, sampler.seed) == (3, 1, 2, 3)


def test_the_same_seed_gives_the_same_initialization():
    first, second, other = _run(), _run(), _run(seed=1)
    for name, value in first.backbone_params().items():
        assert torch.equal(value, second.backbone_params()[name])
    assert any(
        not torch.equal(v, other.backbone_params()[k]) for k, v in first.backbone_params().items()
    )


def test_a_restored_run_ends_where_an_unbroken_run_ends():
    unbroken = _run()
    unbroken.train(2, validate_every=1)
    saved: list[tuple] = []
    first = _run()
    first.train(
        1,
        validate_every=1,
        save=lambda state: saved.append(
            (copy.deepcopy(first.backbone_params()), first.optimizer_tensors(), copy.copy(state))
        ),
    )
    resumed = _run()
    resumed.load_backbone({k: torch.zeros_like(v) for k, v in resumed.backbone_params().items()})
    weights, optimizer_state, state = saved[-1]
    resumed.restore(weights, optimizer_state, TrainState(state.iteration, state.wall_time_s))
    steps: list[int] = []
    resumed.train(2, validate_every=1, on_step=lambda iteration, _: steps.append(iteration))
    assert steps == [2] and resumed.state.iteration == 2
    for name, value in unbroken.backbone_params().items():
        torch.testing.assert_close(resumed.backbone_params()[name], value)


def test_a_warm_start_must_fit_the_backbone():
    run = _run()
    source = backbone_params(FewShotNet(TINY, n_way=5))
    run.load_backbone(source)
    for name, value in run.backbone_params().items():
        assert torch.equal(value, source[name])
    with pytest.raises(WeightsMismatch, match="missing"):
        run.load_backbone({k: v for k, v in source.items() if "1.0" not in k})
