"""The API's cache of loaded models: a stampede of requests for a model not loaded yet loads it
once; its memory bound is in bytes."""

from __future__ import annotations

import dataclasses
import threading
import time

import torch

from app.services import ModelCache, served_bytes
from models.core import FewShotNet
from models.service import encode_weights
from tests.service_fixtures import SMALL_BACKBONE


def stored_model(n_way: int = 3) -> bytes:
    torch.manual_seed(0)
    model = FewShotNet(SMALL_BACKBONE, n_way=n_way, frozen_norm=True)
    info = {"backbone": dataclasses.asdict(SMALL_BACKBONE), "classes": ["a", "b", "c"][:n_way]}
    return encode_weights(model.state_dict(), info)


def test_concurrent_requests_for_a_cold_model_load_it_once():
    data = stored_model()
    reads = []

    def load_bytes() -> bytes:
        reads.append(1)
        time.sleep(0.2)  # a slow store: every request arrives while the first still reads
        return data

    cache = ModelCache(2**30, served_bytes)
    served = []
    threads = [
        threading.Thread(target=lambda: served.append(cache.load("model_a", load_bytes)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and len({id(s) for s in served}) == 1
    assert (cache.misses, cache.hits) == (1, 7)


def test_models_are_evicted_by_the_bytes_they_hold():
    data = stored_model()
    cache = ModelCache(5 * len(data), served_bytes)  # each holds about twice its weights
    for name in ("m1", "m2", "m3"):
        assert cache.load(name, lambda: data) is not None
    assert len(cache) == 2 and cache.get("m1") is None
    assert cache.total_weight == 4 * len(data)
