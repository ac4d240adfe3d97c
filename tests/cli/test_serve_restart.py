"""The local service remembers: ``fewshot serve`` with its embedded Redis, a key made by
``fewshot keys create`` while it runs (no REDIS_URL), a model adapted through the API, Ctrl-C,
``fewshot serve`` again: the key still opens the API and the model still predicts. Real
processes, real Redis, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service_fixtures import free_port, image_bytes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def environment(data_dir: Path, base_models_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FEWSHOT_REDIS_URL")}
    return env | {
        "FEWSHOT_DATA_DIR": str(data_dir),
        "FEWSHOT_BASE_MODELS_DIR": str(base_models_dir),
        "FEWSHOT_AUTH": "keys",
        "FEWSHOT_REPORT_ATTACKS": "fgsm",
        "FEWSHOT_WORKER_ALIVE_FILE": str(data_dir.parent / "worker.alive"),
        "FEWSHOT_LOG_FORMAT": "text",
        "PORT": str(port),
    }


def start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "serve"], cwd=ROOT, env=env, start_new_session=True
    )


def wait_ready(url: str, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"fewshot serve exited with {server.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}/readyz did not answer 200 within {timeout_s} s")


def ctrl_c(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert server.wait(timeout=60) == 0


def adapt(url: str, headers: dict[str, str]) -> str:
    files = [("images", (f"{c}{i}.png", image_bytes(c, i))) for c in range(2) for i in range(2)]
    data = {"labels": ["a", "a", "b", "b"], "steps": "2", "report": "none"}
    created = httpx.post(f"{url}/v1/adaptations", files=files, data=data, headers=headers)
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}{created.json()['status_url']}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert job["state"] == "succeeded", job
    return created.json()["model_id"]


def test_a_model_and_a_key_survive_ctrl_c_and_a_new_start(tmp_path, base_models_dir):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment(tmp_path / "data", base_models_dir, port)
    server = start(env)
    try:
        wait_ready(url, server)
        made = subprocess.run(
            [sys.executable, "-m", "cli", "keys", "create", "--tenant", "alice"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"unix://{tmp_path / 'data' / 'redis' / 'redis.sock'}" in made.stderr
        headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
        model_id = adapt(url, headers)
        ctrl_c(server)
        assert (tmp_path / "data" / "redis" / "appendonly.aof").exists()
        server = start(env)
        wait_ready(url, server)
        model = httpx.get(f"{url}/v1/models/{model_id}", headers=headers)
        assert model.status_code == 200 and model.json()["state"] == "ready", model.text
        files = [("images", ("q.png", image_bytes(1, 9)))]
        predicted = httpx.post(
            f"{url}/v1/models/{model_id}/predictions", files=files, headers=headers
        )
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["predictions"][0]["label"] in ("a", "b")
        ctrl_c(server)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
