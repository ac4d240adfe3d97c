"""Data-parallel meta-training with torchrun (2 CPU ranks, gloo).

Equality with one process is checked where it is exact by construction: the all-reduced
meta-gradient and one SGD step (linear in the gradient), in float64, against a bound derived
from float64 rounding. A weight comparison after Adam steps would not be: float32 sums in
another order can flip the sign of a near-zero gradient, which Adam turns into a full step.
The torchrun run end to end is checked for what it must do: train, resume, write its card.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cli.runs import exit_rank, finish_distributed
from models.core import FewShotNet, MetaConfig, load_checkpoint
from models.meta import Ranks, accumulate_meta_gradient, distributed_meta_step
from tests.conftest import TINY, synthetic_task

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "meta-train",
    "--validate-every",
    "1",
    "--val-episodes",
    "1",
    "--width",
    "8",
    "--meta-batch",
    "4",
    "--query",
    "2",
    "--device",
    "cpu",
]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _run(command: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_ranks_train_resume_and_write_their_card(omniglot_path, tmp_path):
    def train(out: str, iterations: int, *extra: str) -> None:
        command = [*ARGS, "--iterations", str(iterations), "--out", str(tmp_path / out), *extra]
        _run([*TORCHRUN, "-m", "cli", *command, "--data", str(omniglot_path)])

    train("run", 2)
    after_two = load_checkpoint(tmp_path / "run")
    assert after_two.card["world_size"] == 2 and after_two.card["iterations"] == 2
    train("run", 3, "--resume")
    resumed = load_checkpoint(tmp_path / "run")
    assert resumed.card["world_size"] == 2 and resumed.card["iterations"] == 3
    assert [v["iteration"] for v in resumed.card["validation"]] == [1, 2, 3]
    assert all(torch.isfinite(t).all() for t in resumed.tensors.values())
    assert any(not torch.equal(t, after_two.tensors[k]) for k, t in resumed.tensors.items())
    # a resumed run repeats the uninterrupted run's computation in the same order: same bits
    train("straight", 3)
    straight = load_checkpoint(tmp_path / "straight")
    assert straight.tensors.keys() == resumed.tensors.keys()
    for name, tensor in straight.tensors.items():
        assert torch.equal(resumed.tensors[name], tensor), name


CONFIG = MetaConfig(way=3, shot=1, query=2, meta_batch=4, eps=0.05, meta_lr=0.01)
UNIT_ROUNDOFF = torch.finfo(torch.float64).eps / 2  # u = 2**-53


def _setup() -> tuple[FewShotNet, torch.optim.Optimizer, list]:
    """Same model, tasks and a plain SGD optimizer (an update linear in the gradient)."""
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=CONFIG.way).double()
    backbone = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    optimizer = torch.optim.SGD(backbone, lr=CONFIG.meta_lr)
    tasks = [synthetic_task(3, 1, 2, seed=s, dtype=torch.float64) for s in range(4)]
    return model, optimizer, tasks


def _rank_step(rank: int, world: int, store: str, out: str) -> None:
    torch.set_num_threads(1)  # sequential kernels: each task's gradient has the same bits
    # a file store, not a TCP port picked earlier that another process could take meanwhile
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    model, optimizer, tasks = _setup()
    mine = [tasks[j] for j in Ranks(rank, world).share(CONFIG.meta_batch)]
    metrics = distributed_meta_step(model, optimizer, mine, CONFIG, Ranks(rank, world))
    params = optimizer.param_groups[0]["params"]
    torch.save(
        {
            "grads": [p.grad.clone() for p in params],
            "weights": [p.detach().clone() for p in params],
            "loss": metrics.loss,
        },
        f"{out}.{rank}",
    )
    finish_distributed(Ranks(rank, world))  # as the CLI leaves: barrier, destroy,
    exit_rank(Ranks(rank, world))  # then no interpreter teardown (gloo can abort it)


def _per_task_gradients() -> list[list[torch.Tensor]]:
    """Each task's scaled meta-gradient alone, as every rank computes it."""
    gradients = []
    for j in range(CONFIG.meta_batch):
        model, optimizer, tasks = _setup()
        optimizer.zero_grad(set_to_none=True)
        accumulate_meta_gradient(model, [tasks[j]], CONFIG, scale=1.0 / CONFIG.meta_batch)
        gradients.append([p.grad.clone() for p in optimizer.param_groups[0]["params"]])
    return gradients


def test_ranks_share_the_meta_batch_exactly_once():
    for meta_batch, world in ((4, 2), (5, 2), (7, 3), (3, 3)):
        shares = [list(Ranks(rank, world).share(meta_batch)) for rank in range(world)]
        assert sorted(j for share in shares for j in share) == list(range(meta_batch)), shares


def test_all_reduced_meta_step_equals_the_single_process_step(tmp_path):
    out = tmp_path / "rank.pt"
    mp.spawn(_rank_step, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    parallel, other = (torch.load(f"{out}.{rank}", weights_only=True) for rank in (0, 1))
    for name in ("grads", "weights"):  # every rank holds the same bits after the step
        assert all(torch.equal(a, b) for a, b in zip(parallel[name], other[name], strict=True))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_task = _per_task_gradients()
        model, optimizer, tasks = _setup()
        start = [p.detach().clone() for p in optimizer.param_groups[0]["params"]]
        metrics = distributed_meta_step(model, optimizer, tasks, CONFIG, Ranks())
    finally:
        torch.set_num_threads(threads)
    params = optimizer.param_groups[0]["params"]
    n, lr, u = CONFIG.meta_batch, CONFIG.meta_lr, UNIT_ROUNDOFF
    # Any order of summing n terms is within gamma_{n-1} * sum |g_i| of the exact sum
    # (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 4.4); the two
    # runs differ by at most twice that.
    gamma = (n - 1) * u / (1 - (n - 1) * u)
    for index, param in enumerate(params):
        magnitude = sum(grads[index].abs() for grads in per_task)
        grad_bound = 2 * gamma * magnitude
        difference = (parallel["grads"][index] - param.grad).abs()
        assert (difference <= grad_bound).all(), (index, (difference - grad_bound).max())
        # p - lr * g: the gradients' difference times lr, plus one rounding of each of
        # the product and the sum, in each run
        step_bound = lr * grad_bound + 2 * u * (2 * lr * param.grad.abs() + param.abs().detach())
        step_bound = step_bound * (1 + 4 * u)
        difference = (parallel["weights"][index] - param.detach()).abs()
        assert (difference <= step_bound).all(), (index, (difference - step_bound).max())
    assert parallel["loss"] == pytest.approx(metrics.loss, rel=4 * n * u, abs=0)
    # preconditions: the step moved the weights, and no weight's gradient is all zero (conv
    # biases are left out: the batch norm after each conv makes theirs zero up to rounding)
    assert any(not torch.equal(p.detach(), s) for p, s in zip(params, start, strict=True))
    assert all(p.grad.abs().sum() > 0 for p in params if p.dim() > 1)
