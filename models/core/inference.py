"""A deployed (frozen-norm) network compiled for inference on CPU with TorchScript.

Tracing costs far more than the rest of a compilation (about 23 of 31 ms for the shipped
Conv-4 on 2 CPUs), and its result depends only on the network's architecture: each one is
traced once per process, and every model of it compiles from a copy of that trace holding its
own weights (about 9 ms). The graph then runs twice on the example before it is returned, so
that the TorchScript executor's first runs (a profiling run, then its optimisation: about
10 ms) are not paid by the first caller.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import Tensor, nn

from models.core.networks import FewShotNet

logger = logging.getLogger(__name__)
MAX_TRACES = 32  # architectures kept traced (each holds one copy of its weights, ~0.5 MB)
WARM_UP_RUNS = 2  # the executor profiles its first run and optimises on the second

_traces: OrderedDict[Hashable, torch.jit.ScriptModule] = OrderedDict()
_traces_lock = threading.Lock()


def inference_graph(
    model: FewShotNet, *, features_only: bool = False
) -> Callable[[Tensor], Tensor]:
    """``model`` (frozen norms) compiled for inference on CPU: traced with TorchScript, its
    BatchNorm folded into the convolutions and run by oneDNN (``optimize_for_inference``).

    Maps ``[B, C, S, S]`` in [0, 1] to logits ``[B, n_way]`` (features ``[B, D]`` with
    ``features_only``) for any batch size, equal to ``model`` within float rounding (tested)
    and faster on CPU (3-4x the NCHW eager module, benchmarks/predict_throughput.py; less
    against the channels-last one of :func:`cpu_fast_layout`); no gradients flow through
    it (attacks use ``model``). TorchScript is deprecated from torch 2.10 but works in the
    pinned torch; where it does not, the eager module is returned and a warning logged.
    Thread-safe: models may be compiled on several threads at once.
    """
    if not model.frozen_norm:
        raise ValueError("only a frozen-norm model has fixed BatchNorm statistics to fold")
    module = (model.features if features_only else model).eval()
    parameter = next(model.parameters())
    side = model.config.image_size
    example = torch.zeros(
        2, model.config.in_channels, side, side, dtype=parameter.dtype, device=parameter.device
    )
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # said above, once
            traced = _trace_of(module, example, (model.config, features_only))
            graph = torch.jit.optimize_for_inference(traced)
            for _ in range(WARM_UP_RUNS):
                graph(example)
            return graph
    except (AttributeError, RuntimeError) as error:  # a torch without (this) TorchScript
        logger.warning("serving the eager model: TorchScript could not compile it (%s)", error)
        return module


def _trace_of(module: nn.Module, example: Tensor, config: Hashable) -> torch.jit.ScriptModule:
    """A trace of ``module`` holding its weights: a copy of its architecture's trace."""
    state = module.state_dict()
    key = (config, tuple((n, t.shape, t.stride(), t.dtype, t.device) for n, t in state.items()))
    with _traces_lock:
        traced = _traces.get(key)
    if traced is None:  # traced on a copy: the trace must not share this model's tensors
        traced = torch.jit.trace(copy.deepcopy(module), example, check_trace=False)
        with _traces_lock:
            traced = _traces.setdefault(key, traced)
            while len(_traces) > MAX_TRACES:
                _traces.popitem(last=False)
    own = copy.deepcopy(traced)
    own.load_state_dict(state)  # copied into the trace's tensors: same shapes and layout
    return own
