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
    _await(settings.worker_alive_file.exists, "the alive file appears")
    assert is_alive(settings, now=_beat(settings))  # judged at the beat: no stall can age it
    first = settings.worker_alive_file.stat().st_mtime_ns
    # beats while idle: the file is touched again (awaited, not slept for)
    _await(lambda: settings.worker_alive_file.stat().st_mtime_ns > first, "a second beat")
    assert not is_alive(settings, now=time.time() + 4 * settings.heartbeat_s)
    worker.stop.set()
    _await(lambda: not settings.worker_alive_file.exists(), "the alive file goes")
    assert not is_alive(settings)


def _beat(settings) -> float:
    return settings.worker_alive_file.stat().st_mtime


def _await(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def test_a_stale_file_is_not_alive(settings):
    settings.worker_alive_file.touch()
    assert is_alive(settings, now=_beat(settings) + settings.heartbeat_s)
    old = time.time() - 10 * settings.heartbeat_s
    os.utime(settings.worker_alive_file, (old, old))
    assert not is_alive(settings)
