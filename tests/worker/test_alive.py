"""The worker's liveness: its alive file, fresh while it runs, gone when it stops."""

from __future__ import annotations

import os
import time

import pytest

from worker.alive import is_alive

pytestmark = pytest.mark.redis


def test_alive_while_running_and_not_after(settings, start_worker):
    assert not is_alive(settings)
    worker = start_worker(settings)
    deadline = time.monotonic() + 10
    while not settings.worker_alive_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert is_alive(settings)
    first = settings.worker_alive_file.stat().st_mtime
    time.sleep(3 * settings.heartbeat_s)
    assert settings.worker_alive_file.stat().st_mtime > first  # beats while idle
    assert not is_alive(settings, now=time.time() + 4 * settings.heartbeat_s)
    worker.stop.set()
    deadline = time.monotonic() + 10
    while settings.worker_alive_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(settings)


def test_a_stale_file_is_not_alive(settings):
    settings.worker_alive_file.touch()
    assert is_alive(settings)
    old = time.time() - 10 * settings.heartbeat_s
    os.utime(settings.worker_alive_file, (old, old))
    assert not is_alive(settings)
