"""The API's cache of loaded models: a stampede of requests for a model not loaded yet loads it
once; its memory bound is in bytes."""

from __future__ import annotations

import dataclasses
import threading
import time

import torch

from app.services import ModelCache, served_bytes
from models.core import FewShotNet
from models.service import encode_weights, probabilities
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


def held_compiler(cache: ModelCache) -> threading.Event:
    """Holds the cache's compiling thread until the event is set: a graph not compiled yet."""
    release = threading.Event()
    cache.compiler.submit(release.wait)
    return release


def test_a_cold_model_answers_eagerly_then_the_same_from_its_graph_swapped_in():
    data = stored_model()
    cache = ModelCache(2**30, served_bytes)
    release = held_compiler(cache)
    served = cache.load("model_a", lambda: data)
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    assert served.graph is None and served.forward is served.model  # not compiled on the load
    eager = probabilities(served.forward, images)
    assert cache.total_weight == 2 * len(data)  # the graph to come is counted from the start
    release.set()
    cache.wait_for_graphs()
    assert served.graph is not None and served.forward is served.graph
    torch.testing.assert_close(probabilities(served.forward, images), eager, atol=1e-5, rtol=0)
    assert cache.total_weight == 2 * len(data) and cache.get("model_a") is served


def test_a_model_evicted_before_its_turn_is_not_compiled():
    data = stored_model()
    cache = ModelCache(3 * len(data), served_bytes)  # room for one model
    release = held_compiler(cache)
    first = cache.load("m1", lambda: data)
    second = cache.load("m2", lambda: data)
    release.set()
    cache.wait_for_graphs()
    assert cache.get("m1") is None and first.graph is None
    assert second.graph is not None


def test_a_closed_cache_still_serves_models_eagerly():
    data = stored_model()
    cache = ModelCache(2**30, served_bytes)
    cache.close()
    served = cache.load("model_a", lambda: data)
    assert served is not None and served.forward is served.model
