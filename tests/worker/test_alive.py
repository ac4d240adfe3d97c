"""The worker's liveness: its alive file, fresh while it runs, gone when it stops."""

from __future__ import annotations

import os
import time

import pytest

from tests.service_fixtures import eventually
from worker.alive import is_alive

pytestmark = pytest.mark.redis


def test_alive_while_running_and_not_after(settings, start_worker):
    assert not is_alive(settings)
    worker = start_worker(settings)
    eventually(settings.worker_alive_file.exists, "the alive file appears")
    assert is_alive(settings, now=_beat(settings))  # judged at the beat: no stall can age it
    first = settings.worker_alive_file.stat().st_mtime_ns
    # beats while idle: the file is touched again (awaited, not slept for)
    eventually(lambda: settings.worker_alive_file.stat().st_mtime_ns > first, "a second beat")
    assert not is_alive(settings, now=time.time() + 4 * settings.heartbeat_s)
    worker.stop.set()
    eventually(lambda: not settings.worker_alive_file.exists(), "the alive file goes")
    assert not is_alive(settings)


def _beat(settings) -> float:
    return settings.worker_alive_file.stat().st_mtime


def test_a_stale_file_is_not_alive(settings):
    settings.worker_alive_file.touch()
    assert is_alive(settings, now=_beat(settings) + settings.heartbeat_s)
    old = time.time() - 10 * settings.heartbeat_s
    os.utime(settings.worker_alive_file, (old, old))
    assert not is_alive(settings)
