"""Inference graphs: traced once per architecture, each model's graph holding its own weights."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from models.core import BackboneConfig, FewShotNet, calibrate_norm, cpu_fast_layout
from models.core import inference as inference_module
from models.core.inference import inference_graph
from tests.conftest import TINY


def deployed(config: BackboneConfig, n_way: int, seed: int) -> FewShotNet:
    """A frozen-norm model of random weights, calibrated and laid out as the service loads it."""
    torch.manual_seed(seed)
    model = FewShotNet(config, n_way=n_way, frozen_norm=True)
    side = config.image_size
    calibrate_norm(model, torch.rand(8, config.in_channels, side, side))
    return cpu_fast_layout(model)


@pytest.fixture
def traces(monkeypatch) -> list[int]:
    """Counts the traces made (the real ``torch.jit.trace`` runs), from an empty store of them."""
    monkeypatch.setattr(inference_module, "_traces", type(inference_module._traces)())
    made = []
    real = torch.jit.trace

    def counted(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", counted)
    return made


@pytest.mark.parametrize("config", [TINY, BackboneConfig(in_channels=3, image_size=32, width=8)])
def test_models_of_one_architecture_share_a_trace_and_answer_with_their_own_weights(config, traces):
    first, second, wider = deployed(config, 3, 0), deployed(config, 3, 1), deployed(config, 4, 2)
    graphs = [inference_graph(model) for model in (first, second, wider, first)]
    assert len(traces) == 2  # 3-way and 4-way: one trace each
    x = torch.rand(5, config.in_channels, config.image_size, config.image_size)
    with torch.no_grad():
        for graph, model in zip(graphs, (first, second, wider, first), strict=True):
            assert torch.allclose(graph(x), model(x), atol=1e-5)
        assert not torch.allclose(graphs[0](x), graphs[1](x), atol=1e-2)  # other weights
        features = inference_graph(second, features_only=True)
        assert torch.allclose(features(x), second(x, features_only=True), atol=1e-5)
    assert len(traces) == 3  # features only: an architecture of its own


def test_graphs_compiled_on_several_threads_at_once_hold_their_own_weights(traces):
    models = [deployed(TINY, 3, seed) for seed in range(6)]
    with ThreadPoolExecutor(3) as pool:
        graphs = list(pool.map(inference_graph, models))
    x = torch.rand(4, TINY.in_channels, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        for graph, model in zip(graphs, models, strict=True):
            assert torch.allclose(graph(x), model(x), atol=1e-5)
