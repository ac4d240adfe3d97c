"""Conv-4, heads for any N-way task, frozen BatchNorm for deployment."""

from __future__ import annotations

import copy
from dataclasses import asdict

import pytest
import torch

from models.core import (
    NORM_STATISTICS,
    BackboneConfig,
    ConfigError,
    FewShotNet,
    WeightsMismatch,
    backbone_params,
    calibrate_norm,
    deployable,
    inference_graph,
    init_head,
    load_weights,
    logits_of,
)
from models.service import decode_weights, encode_weights, load_adapted
from tests.conftest import TINY, synthetic_task


def test_standard_conv4_shapes():
    model = FewShotNet(BackboneConfig(), n_way=5)
    assert BackboneConfig().feature_size == 64
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 5)
    rgb = BackboneConfig(in_channels=3, image_size=84, width=32)
    assert FewShotNet(rgb, n_way=4)(torch.rand(2, 3, 84, 84)).shape == (2, 4)
    assert rgb.feature_size == 32 * 5 * 5


def test_bad_backbone_configs_fail_fast():
    with pytest.raises(ConfigError, match="image_size must be >= 16"):
        BackboneConfig(image_size=8, blocks=4)
    with pytest.raises(ConfigError, match="in_channels"):
        BackboneConfig(in_channels=2)


@pytest.mark.parametrize("n_way", [2, 3, 7])
@pytest.mark.parametrize("mode", ["proto", "zero"])
def test_head_serves_any_n_way(n_way, mode):
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=5)  # meta-trained 5-way, used for other N
    task = synthetic_task(n_way, 2, 1)
    theta = backbone_params(model)
    head = init_head(model, theta, task.x_support, task.y_support, n_way, mode)
    logits = logits_of(model, {**theta, **head}, task.x_query)
    assert logits.shape == (n_way, n_way)
    if mode == "proto":  # prototypes rank their own class first on clean support images
        support_logits = logits_of(model, {**theta, **head}, task.x_support)
        assert (support_logits.argmax(1) == task.y_support).float().mean() >= 0.5
    else:
        assert torch.count_nonzero(logits) == 0


def test_deployed_prediction_does_not_depend_on_the_batch():
    # float64: a batch of 12 and a batch of 1 may take different conv kernels, whose float32
    # rounding differs by more than assert_close's float32 default; in float64 it is ~1e-16,
    # far under the float64 default, while a batch-dependent norm moves logits by ~0.1
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=3).double()
    task = synthetic_task(3, 2, 4, dtype=torch.float64)
    theta = backbone_params(model)
    head = init_head(model, theta, task.x_support, task.y_support, 3, "proto")
    deployed = deployable(TINY, {**theta, **head}, task.x_support)
    assert not deployed.training
    together = deployed(task.x_query)
    one_by_one = torch.cat([deployed(x[None]) for x in task.x_query])
    torch.testing.assert_close(together, one_by_one)
    # the training-time module normalises by batch, so it does depend on the batch
    batch_dependent = logits_of(model, {**theta, **head}, task.x_query[:2])
    assert not torch.allclose(batch_dependent, together[:2])


def test_calibration_needs_frozen_norm_and_deployable_checks_params():
    model = FewShotNet(TINY, n_way=3)
    with pytest.raises(ValueError, match="frozen_norm=True"):
        calibrate_norm(model, torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="missing"):
        params = {k: v for k, v in model.named_parameters() if k != "features.0.0.weight"}
        deployable(TINY, params, torch.rand(4, 1, 8, 8))


@pytest.mark.parametrize(("way", "shot"), [(2, 1), (5, 1), (5, 5)])
def test_deployed_logits_equal_adapted_logits_on_the_support_set(way, shot):
    """The deployed model's stored statistics are those adaptation normalised by (biased
    batch variance): on the support set both give the same logits."""
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=way).double()
    task = synthetic_task(way, shot, 1, dtype=torch.float64)
    theta = backbone_params(model)
    head = init_head(model, theta, task.x_support, task.y_support, way, "proto")
    adapted = logits_of(model, {**theta, **head}, task.x_support)  # training-mode batch norm
    deployed = deployable(TINY, {**theta, **head}, task.x_support)(task.x_support)
    torch.testing.assert_close(deployed, adapted)


@pytest.mark.parametrize("config", [TINY, BackboneConfig(in_channels=3, image_size=32, width=8)])
def test_inference_graph_equals_the_deployed_model_at_any_batch_size(config):
    torch.manual_seed(0)
    side = config.image_size
    x_support = torch.rand(6, config.in_channels, side, side)
    y_support = torch.arange(3).repeat(2)
    model = FewShotNet(config, n_way=3)
    theta = backbone_params(model)
    head = init_head(model, theta, x_support, y_support, 3, "proto")
    deployed = deployable(config, {**theta, **head}, x_support)
    compiled = inference_graph(deployed)
    features = inference_graph(deployed, features_only=True)
    for batch in (1, 5, 70):  # traced on 2 images: other sizes must work as well
        x = torch.rand(batch, config.in_channels, config.image_size, config.image_size)
        with torch.no_grad():
            assert torch.allclose(compiled(x), deployed(x), atol=1e-5)
            assert torch.allclose(features(x), deployed(x, features_only=True), atol=1e-5)
    with pytest.raises(ValueError, match="frozen-norm"):
        inference_graph(FewShotNet(config, n_way=3))


@pytest.mark.parametrize("config", [TINY, BackboneConfig(in_channels=3, image_size=32, width=8)])
def test_a_deployed_cpu_model_runs_channels_last_equal_within_float_rounding(config):
    """Deployed and loaded models run channels-last on a CPU (its vectorised max-pool): the
    logits and input gradients (what attacks follow) of the contiguous module within float
    rounding, and their stored weights come back contiguous."""
    torch.manual_seed(0)
    side = config.image_size
    x_support = torch.rand(6, config.in_channels, side, side)
    model = FewShotNet(config, n_way=3)
    theta = backbone_params(model)
    head = init_head(model, theta, x_support, torch.arange(3).repeat(2), 3, "proto")
    deployed = deployable(config, {**theta, **head}, x_support)
    convs = [m.weight for m in deployed.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)
    contiguous = copy.deepcopy(deployed).to(memory_format=torch.contiguous_format)
    x = torch.rand(9, config.in_channels, side, side)
    y = torch.randint(0, 3, (9,))
    gradients = []
    for module in (deployed, contiguous):
        xx = x.clone().requires_grad_()
        loss = torch.nn.functional.cross_entropy(module(xx), y)
        gradients.append((module(x).detach(), torch.autograd.grad(loss, xx)[0]))
    torch.testing.assert_close(gradients[0], gradients[1])
    stored = encode_weights(
        deployed.state_dict(), {"backbone": asdict(config), "classes": ["a", "b", "c"]}
    )
    loaded, _ = load_adapted(stored, torch.device("cpu"))
    assert all(v.is_contiguous() for v in decode_weights(stored)[0].values())
    loaded_convs = [m.weight for m in loaded.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in loaded_convs)
    torch.testing.assert_close(loaded(x), deployed(x))


def test_load_weights_takes_exactly_the_state_dict_it_is_told_to():
    source = FewShotNet(TINY, n_way=3, frozen_norm=True)
    state = {k: v + 1 for k, v in source.state_dict().items()}
    backbone = {k: v for k, v in state.items() if not k.startswith("head.")}
    loaded = load_weights(FewShotNet(TINY, n_way=3, frozen_norm=True), state, head=True)
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[name])
    fresh_head = FewShotNet(TINY, n_way=5, frozen_norm=True)
    head = fresh_head.head.weight.detach().clone()
    load_weights(fresh_head, backbone)  # the head is the task's own
    assert torch.equal(fresh_head.head.weight, head)
    params = {k: v for k, v in backbone.items() if not k.endswith(NORM_STATISTICS)}
    load_weights(FewShotNet(TINY, frozen_norm=True), params, optional=NORM_STATISTICS)
    for weights, options, message in (
        (backbone, {"head": True}, r"missing \['head.bias', 'head.weight'\]"),
        (state, {}, r"unexpected \['head.bias', 'head.weight'\]"),
        (params, {}, r"missing \['features.0.1.num_batches_tracked'"),
        ({**backbone, "features.0.0.bias": torch.zeros(7)}, {}, r"shape \['features.0.0.bias'\]"),
    ):
        with pytest.raises(WeightsMismatch, match=message):
            load_weights(FewShotNet(TINY, n_way=3, frozen_norm=True), weights, **options)
