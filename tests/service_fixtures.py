"""Fixtures for the service tests: a real Redis under a private key prefix, a small base model,
settings pointing at both, real PNG/JPEG bytes, and a worker thread."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import redis
import torch
import uvicorn
from fastapi import FastAPI
from PIL import Image

from app.main import create_app
from app.serving import server_config
from common.artifacts import open_store
from common.jobs import JobStore
from common.keys import Keys, ModelState
from common.model_record import ModelRecord
from common.model_store import ModelStore
from common.settings import Settings
from common.stores import Stores
from models.core import BackboneConfig, FewShotNet, MetaConfig, backbone_params, save_checkpoint
from models.report import unfinished_report
from models.service import load_base_models
from worker.runner import Worker

TEST_REDIS_URL = os.environ.get("FEWSHOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
SMALL_BACKBONE = BackboneConfig(in_channels=1, image_size=28, width=8, blocks=4)


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {TEST_REDIS_URL} (.ci/run starts one)")
    yield TEST_REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keys_under(redis_url: str, prefix: str) -> list[bytes]:
    return sorted(redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}:*"))


def service_stores(settings: Settings, client: redis.Redis | None = None) -> Stores:
    """The stores as the API and the worker build them (common.stores)."""
    return Stores.build(settings, client, unfinished_report)


def job_store(client: redis.Redis, keys: Keys, ttl_s: int = 600) -> JobStore:
    """A job store as the service builds one, its jobs and models kept ``ttl_s``, blobs in the
    tests' data folder (tests/conftest.py)."""
    models = ModelStore(client, keys, ttl_s, open_store(Settings().artifacts_location))
    return JobStore(client, keys, ttl_s, models, unfinished_report)


def new_model(model_id: str, created: float = 1.0, tenant: str = "t1") -> ModelRecord:
    """The model a test's adaptation job makes (the job fills in its state and maker)."""
    return ModelRecord(
        id=model_id,
        tenant=tenant,
        state=ModelState.PENDING,
        created=created,
        base_model="tiny-adml",
        classes=("a", "b", "c"),
        settings="{}",
    )


def save_tiny_base_model(path: Path, algo: str = "adml", **card: object) -> None:
    """A small (untrained) Conv-4 saved as a real checkpoint at ``path``; ``card``: more fields."""
    torch.manual_seed(0)
    model = FewShotNet(SMALL_BACKBONE, n_way=5)
    card = {
        "kind": "meta-trained",
        "algo": algo,
        "backbone": SMALL_BACKBONE.__dict__,
        "meta": {**MetaConfig().__dict__, "algo": algo},
        "data": {"kind": "omniglot"},
        "iterations": 0,
        "metrics": {},
        **card,
    }
    save_checkpoint(path, backbone_params(model), card)


@pytest.fixture(scope="session")
def base_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small (untrained) base model: service mechanics, not accuracy."""
    folder = tmp_path_factory.mktemp("base_models")
    save_tiny_base_model(folder / "tiny-adml")
    return folder


@pytest.fixture
def settings(redis_url: str, prefix: str, base_models_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        auth="open",  # tests/app/test_auth.py checks keys and tenants
        open_hosts="localhost,127.0.0.1,::1,testserver",  # testserver: the test client's Host
        worker_alive_file=tmp_path / "worker.alive",
        redis_url=redis_url,
        key_prefix=prefix,
        base_models_dir=base_models_dir,
        worker_block_ms=50,
        heartbeat_s=0.5,
        claim_idle_ms=2000,
        max_classes=6,
        max_shots=4,
        max_file_bytes=200_000,
        max_pixels=1_000_000,
        # the strong suite's kinds on small budgets (tests/app/test_e2e.py runs the default)
        report_attacks="fgsm,pgd-3,apgd-ce-5,apgd-t-5,square-20,pgd-5x2",
    )


@pytest.fixture
def start_worker() -> Iterator:
    """Start in-process worker threads for given settings; all are stopped afterwards."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start(settings: Settings, name: str | None = None) -> Worker:
        """``name``: the consumer name, needed for several workers in one process."""
        client = redis.Redis.from_url(settings.redis_url)
        base_models = load_base_models(settings.base_models_dir)
        worker = Worker(settings, client, base_models, **({"name": name} if name else {}))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        running.append((worker, thread))
        return worker

    yield start
    for worker, _ in running:
        worker.stop.set()
    for worker, thread in running:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"worker {worker.name} did not stop within 60 s"


@pytest.fixture
def worker_thread(settings: Settings, start_worker) -> Worker:
    return start_worker(settings)


def image_bytes(
    cls: int, index: int = 0, fmt: str = "PNG", size: int = 40, mode: str = "L"
) -> bytes:
    """A real encoded image of class ``cls``: the class's blocky pattern plus noise."""
    pattern = np.kron(
        np.random.default_rng(cls).integers(0, 2, (4, 4)) * 255, np.ones((size // 4, size // 4))
    )
    noise = np.random.default_rng(1000 * cls + index).normal(0, 20, pattern.shape)
    image = Image.fromarray(np.clip(pattern + noise, 0, 255).astype(np.uint8), "L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def eventually(probe, what: str, timeout: float = 60.0):
    """``probe()``'s first truthy answer, polled until a deadline: tests await conditions
    instead of sleeping a fixed time, so a loaded machine is slower, never wrong."""
    deadline = time.monotonic() + timeout
    while True:
        if answer := probe():
            return answer
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


@contextmanager
def live_server(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """The API (``app``, else a new one) under uvicorn on a free port of 127.0.0.1 (a real
    HTTP server); its URL."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))  # bound here and handed over: no other process can take it
    port = listening.getsockname()[1]
    config = server_config(app or create_app(settings), settings, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, "uvicorn starts")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()
