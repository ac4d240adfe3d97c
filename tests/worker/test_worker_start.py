"""``python -m worker`` refuses to start, with one clear line and exit status 2, when it could
not do its work: an artifact store it cannot write (a folder below a file: refused even as
root), or a device that does not exist. Real processes; Redis never hears of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from common.keys import Keys

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def run_worker(settings, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FEWSHOT_", "KUBE"))}
    environ.update(
        {
            "REDIS_URL": settings.redis_url,
            "FEWSHOT_KEY_PREFIX": settings.key_prefix,
            "FEWSHOT_BASE_MODELS_DIR": str(settings.base_models_dir),
            "FEWSHOT_WORKER_ALIVE_FILE": str(tmp_path / "worker.alive"),
            "FEWSHOT_DATA_DIR": str(tmp_path / "data"),
            "FEWSHOT_LOG_FORMAT": "text",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(settings, tmp_path: Path, result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "worker cannot start" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    client = redis.Redis.from_url(settings.redis_url)
    assert client.zcard(Keys(settings.key_prefix).workers) == 0  # never announced itself
    assert not (tmp_path / "worker.alive").exists()
    return lines[0]


def test_an_unusable_artifact_store_stops_the_worker_at_start(settings, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    unusable = str(tmp_path / "file" / "artifacts")
    line = assert_refused(
        settings, tmp_path, run_worker(settings, tmp_path, FEWSHOT_ARTIFACTS_URL=unusable)
    )
    assert "artifact store" in line and unusable in line and "unusable" in line


def test_a_pod_without_a_shared_store_is_warned_about_loudly(settings, tmp_path):
    """No FEWSHOT_ARTIFACTS_URL in a Kubernetes pod: the warning, then (its data folder is
    unusable here, to end the process at once) the refusal."""
    (tmp_path / "file").write_bytes(b"")
    result = run_worker(
        settings,
        tmp_path,
        KUBERNETES_SERVICE_HOST="10.96.0.1",
        FEWSHOT_DATA_DIR=str(tmp_path / "file" / "data"),
    )
    assert_refused(settings, tmp_path, result)
    warning = [line for line in result.stderr.splitlines() if "ARTIFACTS NOT SHARED" in line]
    assert len(warning) == 1 and "WARNING" in warning[0] and "FEWSHOT_ARTIFACTS_URL" in warning[0]


def test_a_device_that_does_not_exist_stops_the_worker_alike(settings, tmp_path):
    line = assert_refused(settings, tmp_path, run_worker(settings, tmp_path, FEWSHOT_DEVICE="nope"))
    assert "device 'nope'" in line
