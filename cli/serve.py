"""``fewshot serve``: Redis (yours or an embedded one), the API and one worker, on one machine.

Every process it starts is its child; Ctrl-C or SIGTERM stops them all (workers give their job
back first), and the embedded Redis last. The embedded Redis keeps its data in the data folder
(``FEWSHOT_DATA_DIR``, :mod:`cli.local_redis`): a new start finds every job, model and key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.local_redis import LocalRedis, configured_redis_url, die_with_parent
from cli.local_redis import stop as stop_redis

STOP_GRACE_S = 15


class ServeError(RuntimeError):
    pass


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


def serve(host: str, port: int, workers: int, data_dir: Path, echo) -> int:
    """Run until a signal or until a child dies; the exit status."""
    redis_url = configured_redis_url()
    if redis_url:
        echo(f"Redis at {redis_url} (REDIS_URL)")
        return run_service(host, port, workers, redis_url, data_dir, echo)
    local = LocalRedis(data_dir)
    with local.held("fewshot serve"):
        redis_process = local.start()
        echo(f"data in {data_dir} (FEWSHOT_DATA_DIR; wipe it with `fewshot data wipe`)")
        echo(f"embedded Redis at {local.url}, kept on disk (set REDIS_URL to use your own)")
        try:
            return run_service(host, port, workers, local.url, data_dir, echo)
        finally:
            stop_redis(redis_process, STOP_GRACE_S)


def start_banner(url: str, workers: int, auth: str) -> list[str]:
    """What ``fewshot serve`` prints once its children run: where the API is, and a curl
    command that works as printed (with keys, once FEWSHOT_API_KEY holds one)."""
    header = "" if auth == "open" else '-H "Authorization: Bearer $FEWSHOT_API_KEY" '
    lines = [
        f"API on {url} (docs: {url}/docs), {workers} worker(s). Ctrl-C stops everything.",
        f"try: curl {header}-F images=@a1.png -F labels=a -F images=@b1.png -F labels=b "
        f"{url}/v1/adaptations",
    ]
    if header:
        lines.append(
            "     (API keys are on: export FEWSHOT_API_KEY=<the token that "
            "`fewshot keys create --tenant NAME` prints>; fewshot-client reads it too)"
        )
    return lines


def run_service(host: str, port: int, workers: int, redis_url: str, data_dir: Path, echo) -> int:
    """The API and the workers on ``redis_url`` until a signal or a child's death."""
    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "FEWSHOT_HOST": host}
    env["FEWSHOT_DATA_DIR"] = str(data_dir)
    env.setdefault("FEWSHOT_AUTH", "open")  # local use; FEWSHOT_AUTH=keys to try keys
    if workers:  # they share the cores: more torch threads would spin-wait for them
        env.setdefault("FEWSHOT_TORCH_THREADS", "1")
    if env["FEWSHOT_AUTH"] == "open":
        echo("AUTH IS OFF (FEWSHOT_AUTH=open): anyone who reaches this port can use it")
    children = [
        subprocess.Popen([sys.executable, "-m", "app"], env=env, preexec_fn=die_with_parent),
        *(
            subprocess.Popen([sys.executable, "-m", "worker"], env=env, preexec_fn=die_with_parent)
            for _ in range(workers)
        ),
    ]
    for line in start_banner(f"http://{host}:{port}", workers, env["FEWSHOT_AUTH"]):
        echo(line)
    try:
        while stopping["signal"] is None:
            dead = [p for p in children if p.poll() is not None]
            if dead:
                echo(f"a child process exited with status {dead[0].returncode}; stopping")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_all(children)
