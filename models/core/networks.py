"""The Conv-4 backbone of MAML and a linear head that serves any N-way task.

Parameters are addressed by name (``features.*``, ``head.*``) so that the meta-learner can run
the same module with explicit weights through ``torch.func.functional_call``.

BatchNorm has two regimes:

* ``frozen_norm=False`` (meta-training, adaptation): normalise with the statistics of the batch
  at hand, in train and eval mode alike (``track_running_stats=False``), as MAML does.
* ``frozen_norm=True`` (deployment, evaluation): normalise with statistics fixed once on the
  support set by :func:`calibrate_norm`, so one image's prediction never depends on the other
  images of its batch and an attacker cannot move it through them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from models.core.config import BackboneConfig, HeadInit

Params = dict[str, Tensor]


def _block(in_channels: int, width: int, frozen_norm: bool) -> nn.Sequential:
    norm = (
        nn.BatchNorm2d(width, momentum=None, track_running_stats=True)
        if frozen_norm
        else nn.BatchNorm2d(width, track_running_stats=False)
    )
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2)
    )


class FewShotNet(nn.Module):
    """Conv-4 features followed by a linear ``n_way`` head.

    Input: float tensor ``[B, C, S, S]`` with pixels in [0, 1]. Output: logits ``[B, n_way]``
    (or features ``[B, D]`` with ``features_only=True``).
    """

    def __init__(self, config: BackboneConfig, n_way: int = 5, frozen_norm: bool = False):
        super().__init__()
        self.config = config
        self.frozen_norm = frozen_norm
        channels = [config.in_channels] + [config.width] * config.blocks
        self.features = nn.Sequential(
            *(_block(channels[i], channels[i + 1], frozen_norm) for i in range(config.blocks)),
            nn.Flatten(),
        )
        self.head = nn.Linear(config.feature_size, n_way)

    def forward(self, x: Tensor, features_only: bool = False) -> Tensor:
        features = self.features(x)
        return features if features_only else self.head(features)


def backbone_params(model: FewShotNet) -> Params:
    """The meta-learned parameters: everything but the task-specific head."""
    return {k: v for k, v in model.named_parameters() if not k.startswith("head.")}


def features_of(model: FewShotNet, params: Params, x: Tensor) -> Tensor:
    """Features of ``x`` under explicit ``params`` (``[B, D]``)."""
    return functional_call(model, params, (x,), {"features_only": True})


def logits_of(model: nn.Module, params: Params | None, x: Tensor) -> Tensor:
    """Logits of ``x``; with ``params`` the module runs with those weights instead of its own."""
    return model(x) if params is None else functional_call(model, params, (x,))


def init_head(
    model: FewShotNet,
    params: Params,
    x_support: Tensor,
    y_support: Tensor,
    n_way: int,
    mode: HeadInit,
) -> Params:
    """A head for an ``n_way`` task, whatever N the initialization was meta-trained with.

    ``proto``: ``W_k = 2 c_k, b_k = -|c_k|^2`` with ``c_k`` the mean support feature of class k
    (Triantafillou et al. 2020, Proto-MAML), so the initial logits rank classes like a
    Prototypical Network; differentiable w.r.t. ``params``.
    ``zero``: ``W = 0, b = 0`` (Kao et al. 2022). Note that all logits are then equal, so an
    attack against the unadapted model has no gradient: ADML's ``FGSM(theta, S)`` is a no-op.
    """
    dim = model.config.feature_size
    ref = next(iter(params.values()))
    if mode == "zero":
        options = {"dtype": ref.dtype, "device": ref.device, "requires_grad": True}
        return {
            "head.weight": torch.zeros(n_way, dim, **options),
            "head.bias": torch.zeros(n_way, **options),
        }
    features = features_of(model, params, x_support)
    onehot = F.one_hot(y_support, n_way).to(features.dtype)
    prototypes = onehot.T @ features / onehot.sum(0).clamp_min(1).unsqueeze(1)
    return {"head.weight": 2 * prototypes, "head.bias": -(prototypes**2).sum(1)}


@torch.no_grad()
def calibrate_norm(model: FewShotNet, x_reference: Tensor) -> None:
    """Fix a frozen-norm model's BatchNorm statistics to those of ``x_reference``; leave eval.

    The variance stored is the biased one (divided by N*H*W, not N*H*W - 1): the one training-
    mode normalisation used during adaptation, so deployed logits on ``x_reference`` equal the
    adapted ones (PyTorch's own running_var is unbiased: up to 8% apart at 2-way 1-shot).
    """
    if not model.frozen_norm:
        raise ValueError("calibrate_norm needs a model built with frozen_norm=True")

    def store_batch_stats(module: nn.Module, inputs: tuple[Tensor, ...], _: Tensor) -> None:
        batch = inputs[0]
        module.running_mean.copy_(batch.mean((0, 2, 3)))
        module.running_var.copy_(batch.var((0, 2, 3), unbiased=False))

    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    hooks = [norm.register_forward_hook(store_batch_stats) for norm in norms]
    try:
        model.train()
        with torch.no_grad():
            model(x_reference)
    finally:
        for hook in hooks:
            hook.remove()
    model.eval()


class WeightsMismatch(ValueError):
    """Tensors that do not fit the network they are loaded into."""


NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def load_weights(
    model: FewShotNet,
    weights: dict[str, Tensor],
    *,
    head: bool = False,
    optional: tuple[str, ...] = (),
) -> FewShotNet:
    """``model``, in place, holding ``weights``: the one way from stored tensors to a network.

    ``weights`` must name exactly the tensors of ``model``'s state dict, with their shapes: the
    head's too with ``head`` (without it, ``model`` keeps its own head for the task at hand),
    and those whose names end in one of ``optional`` may be absent. Values are copied into the
    model's dtype and device. :class:`WeightsMismatch` names what is missing, unexpected or of
    another shape."""
    expected = {
        name: tuple(value.shape)
        for name, value in model.state_dict().items()
        if head or not name.startswith("head.")
    }
    found = {name: tuple(value.shape) for name, value in weights.items()}
    missing = sorted(k for k in set(expected) - set(found) if not k.endswith(optional))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    if missing or unexpected or reshaped:
        raise WeightsMismatch(
            f"missing {missing}, unexpected {unexpected}, of another shape {reshaped}"
        )
    model.load_state_dict({k: v.detach() for k, v in weights.items()}, strict=False)
    return model


def deployable(
    config: BackboneConfig,
    params: Params,
    x_reference: Tensor,
    *,
    device: torch.device | None = None,
) -> FewShotNet:
    """A frozen-norm module holding ``params`` (backbone + head), calibrated on ``x_reference``."""
    n_way = params["head.weight"].shape[0]
    model = FewShotNet(config, n_way=n_way, frozen_norm=True)
    model.to(device=device or x_reference.device, dtype=params["head.weight"].dtype)
    try:
        load_weights(model, params, head=True, optional=NORM_STATISTICS)
    except WeightsMismatch as error:
        raise ValueError(f"params do not fit the model: {error}") from error
    calibrate_norm(model, x_reference)
    return cpu_fast_layout(model)


def cpu_fast_layout(model: FewShotNet) -> FewShotNet:
    """``model``, in place, with its convolution weights in channels-last memory when it lives
    on a CPU, so that every activation follows: PyTorch vectorises its channels-last max-pool
    and BatchNorm kernels but not its NCHW max-pool (py-spy: 30% of an evaluation's time).
    Equal to the contiguous module within float rounding (~1e-6 relative; tested), not bit for
    bit; on 12 journaled evaluation episodes re-run, both layouts gave the same figures, at
    1.56-1.76x the speed (benchmarks/attack_layout.py). Stored weights stay contiguous
    (:func:`models.service.blobs.encode_weights`). Left alone on other devices."""
    if next(model.parameters()).device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model
