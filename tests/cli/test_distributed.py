"""Data-parallel meta-training with torchrun (2 CPU ranks, gloo) equals one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models.checkpoint import load_checkpoint
from models.config import MetaConfig
from models.networks import FewShotNet
from models.training import Ranks, distributed_meta_step, make_optimizer
from tests.conftest import TINY, synthetic_task

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "meta-train",
    "--iterations",
    "3",
    "--validate-every",
    "3",
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


def _run(command: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_ranks_equal_one_process(omniglot_path, tmp_path):
    data = ["--data", str(omniglot_path)]
    _run([sys.executable, "-m", "cli", *ARGS, "--out", str(tmp_path / "single"), *data])
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "cli",
            *ARGS,
            "--out",
            str(tmp_path / "ranks"),
            *data,
        ]
    )
    single, ranks = load_checkpoint(tmp_path / "single"), load_checkpoint(tmp_path / "ranks")
    assert single.card["world_size"] == 1 and ranks.card["world_size"] == 2
    assert ranks.card["iterations"] == 3
    # float32 sums in another order move near-zero gradients, which Adam normalises to steps
    # of up to lr = 1e-3 each: the weights agree to within the 3 steps' bound, and the exact
    # equality of the all-reduced meta-gradient is checked in float64 below.
    for name, tensor in single.tensors.items():
        torch.testing.assert_close(ranks.tensors[name], tensor, rtol=0, atol=3e-3)


def _rank_step(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model, optimizer, tasks = _setup()
    mine = [tasks[j] for j in Ranks(rank, world).share(CONFIG.meta_batch)]
    distributed_meta_step(model, optimizer, mine, CONFIG, Ranks(rank, world))
    if rank == 0:
        torch.save({k: v.detach() for k, v in model.state_dict().items()}, out)
    dist.destroy_process_group()


def _setup():
    torch.manual_seed(0)
    model = FewShotNet(TINY, n_way=CONFIG.way).double()
    optimizer = make_optimizer(model, CONFIG)
    tasks = [synthetic_task(3, 1, 2, seed=s, dtype=torch.float64) for s in range(4)]
    return model, optimizer, tasks


CONFIG = MetaConfig(way=3, shot=1, query=2, meta_batch=4, eps=0.05, meta_lr=0.01)


def test_all_reduced_meta_step_equals_the_single_process_step(tmp_path):
    out = tmp_path / "rank0.pt"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_rank_step, args=(2, port, str(out)), nprocs=2, join=True)
    model, optimizer, tasks = _setup()
    distributed_meta_step(model, optimizer, tasks, CONFIG, Ranks())
    parallel = torch.load(out, weights_only=True)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(parallel[name], tensor, rtol=1e-9, atol=1e-12)
    assert any(
        not torch.equal(tensor, _setup()[0].state_dict()[name])
        for name, tensor in model.state_dict().items()
    )
