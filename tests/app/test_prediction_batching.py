"""Micro-batched predictions through a real server: concurrent requests share forward passes,
and every request gets exactly the answers it gets alone, never another request's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import support, wait_for
from tests.service_fixtures import eventually, image_bytes, live_server

pytestmark = pytest.mark.redis


def ready_model(settings) -> str:
    with TestClient(create_app(settings)) as client:
        files, data = support(classes=3, shots=2)
        created = client.post("/v1/adaptations", files=files, data={**data, "steps": "3"})
        assert created.status_code == 202, created.text
        assert wait_for(client, created.json()["job_id"])["state"] == "succeeded"
        return created.json()["model_id"]


def query_sets(count: int) -> list[list[tuple]]:
    """``count`` requests of 1 to 4 distinct images each (no two requests alike)."""
    return [
        [
            ("images", (f"q{n}_{i}.png", image_bytes(i % 3, 100 + 10 * n + i), "image/png"))
            for i in range(1 + n % 4)
        ]
        for n in range(count)
    ]


def predict(url: str, model_id: str, files: list, robust: bool) -> dict:
    response = httpx.post(
        f"{url}/v1/models/{model_id}/predictions",
        files=files,
        data={"robustness": str(robust).lower(), "eps": "0.1", "top_k": "3"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_same_answers(batched: dict, alone: dict) -> None:
    assert len(batched["predictions"]) == len(alone["predictions"])
    for got, expected in zip(batched["predictions"], alone["predictions"], strict=True):
        assert got["label"] == expected["label"]
        assert [t["label"] for t in got["top"]] == [t["label"] for t in expected["top"]]
        for a, b in zip(got["top"], expected["top"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
        assert got.get("robustness") == expected.get("robustness")
        assert got["in_domain"] == expected["in_domain"]


@pytest.mark.parametrize("robust", [False, True], ids=["plain", "robustness"])
def test_concurrent_requests_are_batched_and_each_gets_its_own_answers(
    settings, worker_thread, robust
):
    model_id = ready_model(settings)
    requests = query_sets(16)
    app = create_app(settings)
    with live_server(settings, app) as url:
        alone = [predict(url, model_id, files, robust) for files in requests]  # one at a time
        batcher = app.state.services.attack_batches if robust else app.state.services.plain_batches
        assert batcher.batches == batcher.requests == len(requests)  # sequential: no sharing
        with ThreadPoolExecutor(len(requests)) as pool:
            for _ in range(5):  # until one round shared a forward pass (a busy machine may not)
                before = (batcher.batches, batcher.requests)
                batched = list(
                    pool.map(lambda files: predict(url, model_id, files, robust), requests)
                )
                for got, expected in zip(batched, alone, strict=True):
                    assert_same_answers(got, expected)
                if batcher.batches - before[0] < batcher.requests - before[1]:
                    break
            else:
                raise AssertionError("16 concurrent requests never shared a forward pass")


def test_a_deleted_model_stops_answering_within_its_cache_bound_in_every_process(
    settings, worker_thread
):
    bound = 0.5
    quick = settings.model_copy(update={"model_record_cache_s": bound})
    model_id = ready_model(quick)
    files = query_sets(1)[0]
    with TestClient(create_app(quick)) as first, TestClient(create_app(quick)) as second:
        for client in (first, second):  # both processes now trust the model's record
            path = f"/v1/models/{model_id}/predictions"
            assert client.post(path, files=files).status_code == 200
        assert second.delete(f"/v1/models/{model_id}").status_code == 204
        assert second.post(path, files=files).status_code == 404  # its own process: at once
        eventually(
            lambda: first.post(path, files=files).status_code == 404,
            "the other process refuses the deleted model",
            timeout=bound + 1,
        )
