"""Service latency: adaptation jobs (POST -> succeeded) and predictions (1 and 16 clients),
each beside the bare computation measured in this same run.

Usage: python benchmarks/service_latency.py [--jobs 5] [--requests 200] [--base-model NAME]
Starts its own embedded Redis (or uses REDIS_URL), the API (`python -m app`, open mode) and one
worker on 127.0.0.1.
Support sets: 5-way 5-shot from the base model's test alphabets in ../shared/data/omniglot.
Jobs ask for report=quick; the bare computation runs the same adaptation and report.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.local_redis import LocalRedis
from cli.serve import stop_all
from common.keys import Keys
from common.settings import PRETRAINED_DIR, Settings
from models.core import AdaptConfig
from models.data import (
    decode_for,
    omniglot_drawings,
)
from models.meta import adapt_and_deploy
from models.report import robustness_report
from models.service import (
    QUICK_REPORT_ATTACKS,
    REPORT_EPS_GRID,
    REPORT_TIME_BUDGET_S,
    load_adapted,
    load_base_models,
)

OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  (n={len(values)})"


def support_sets(alphabets: list[str], count: int) -> list[list[tuple[str, str, bytes]]]:
    """``count`` 5-way 5-shot sets plus 5 queries per class: (label, file, PNG bytes)."""
    characters = {
        name: sorted(files.items())
        for name, files in omniglot_drawings(OMNIGLOT, alphabets).items()
    }
    names = sorted(characters)
    rng = np.random.default_rng(0)
    sets = []
    for _ in range(count):
        chosen = rng.choice(len(names), 5, replace=False)
        sets.append([(names[i], f, d) for i in chosen for f, d in characters[names[i]][:10]])
    return sets


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("service not ready")


def bare_adaptation(base, items, settings) -> tuple[float, float]:
    """Seconds of the adaptation alone, and of the adaptation + the quick report, on the
    worker's torch threads (FEWSHOT_WORKER_TORCH_THREADS)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(Settings().worker_torch_threads or threads)
    try:
        return _bare_adaptation(base, items, settings)
    finally:
        torch.set_num_threads(threads)


def _bare_adaptation(base, items, settings) -> tuple[float, float]:
    x = torch.stack([torch.from_numpy(decode_for(base.spec, d, source=f)) for _, f, d in items])
    x = x.float() / 255
    classes = sorted({label for label, _, _ in items})
    y = torch.tensor([classes.index(label) for label, _, _ in items])
    config = AdaptConfig(steps=settings["steps"], eps=base.meta.eps)
    started = time.perf_counter()
    adapt_and_deploy(
        base.backbone,
        base.tensors,
        x,
        y,
        n_way=5,
        adapt_config=config,
        head_init=base.meta.head_init,
    )
    adapted = time.perf_counter() - started
    robustness_report(  # what a report=quick job runs
        base.backbone,
        base.tensors,
        x,
        y,
        n_way=5,
        adapt_config=config,
        head_init=base.meta.head_init,
        eps_grid=REPORT_EPS_GRID,
        attacks=QUICK_REPORT_ATTACKS,
        time_budget_s=REPORT_TIME_BUDGET_S,
    )
    return adapted, time.perf_counter() - started


def print_header(base_name: str) -> None:
    """The command, machine and date the figures below belong to."""
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, torch {torch.__version__}")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}; base model {base_name}")


def redis_for(folder: Path) -> tuple[str, list[subprocess.Popen]]:
    """REDIS_URL, else an embedded Redis in ``folder``: (url, processes to stop last)."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], []
    local = LocalRedis(folder)  # a fresh folder: its lock is free
    return local.url, [local.start()]


def start_service(
    redis_url: str, port: int, workers: int, **env_settings: str
) -> list[subprocess.Popen]:
    """``python -m app`` on ``port`` and ``workers`` x ``python -m worker``, quiet logs;
    ``env_settings`` are more environment variables (e.g. FEWSHOT_AUTH="open")."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "FEWSHOT_LOG_LEVEL": "WARNING",
        **env_settings,
    }
    api = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    pool = [
        subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env)
        for _ in range(workers)
    ]
    return [api, *pool]


def bare_forward(weights: bytes, image: bytes, spec, repeats: int) -> list[float]:
    """Seconds per forward pass of the adapted model on one decoded image, in this process."""
    model, _ = load_adapted(weights, torch.device("cpu"))
    x = torch.from_numpy(decode_for(spec, image, source="q"))[None].float() / 255
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            model(x)
        timings.append(time.perf_counter() - started)
    return timings


async def predict_load(url: str, model_id: str, image: bytes, clients: int, total: int):
    latencies: list[float] = []

    async def client_loop(count: int) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(count):
                started = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/models/{model_id}/predictions",
                    files=[("images", ("q.png", image, "image/png"))],
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(total // clients) for _ in range(clients)))
    return latencies, len(latencies) / (time.perf_counter() - started)


def adapt_through_api(url: str, support: list[tuple[str, str, bytes]]) -> tuple[dict, str, float]:
    """One adaptation job (20 steps, quick report) through the API: its finished record, its
    model id, and the seconds the client waited for it."""
    files = [("images", (f, d, "image/png")) for _, f, d in support]
    labels = [label for label, _, _ in support]
    started = time.perf_counter()
    created = httpx.post(
        f"{url}/v1/adaptations",
        files=files,
        data={"labels": labels, "steps": "20", "report": "quick"},
        timeout=60,
    ).json()
    while True:  # polled slowly: a poll costs CPU the job shares on 2 cores
        job = httpx.get(f"{url}{created['status_url']}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert job["state"] == "succeeded", job
    return job, created["model_id"], time.perf_counter() - started


def time_jobs(url: str, base, sets) -> tuple[dict[str, list[float]], str | None]:
    """Per support set, an adaptation job's times and the bare computation's, alternating so
    that load drift hits both; and the last job's model id."""
    names = ("job", "observed", "bare", "to_model", "bare_adapt", "pickup", "in_worker")
    times: dict[str, list[float]] = {name: [] for name in names}
    model_id = None
    for items in sets:
        support = [i for n, i in enumerate(items) if n % 10 < 5]
        job, model_id, observed = adapt_through_api(url, support)
        times["observed"].append(observed)
        times["job"].append(job["finished"] - job["created"])  # the service's clock
        times["pickup"].append(job["started"] - job["created"])  # both the service's clock
        times["in_worker"].append(job["finished"] - job["started"])
        times["to_model"].append(job["model_ready"] - job["created"])  # answers predictions
        adapt_s, total_s = bare_adaptation(base, support, {"steps": 20})
        times["bare_adapt"].append(adapt_s)
        times["bare"].append(total_s)
    return times, model_id


def print_job_times(times: dict[str, list[float]]) -> None:
    print(f"adaptation job, created -> finished: {percentiles(times['job'])}")
    print(f"  as the client saw it (polls 0.5 s): {percentiles(times['observed'])}")
    print(f"bare adaptation + report compute:  {percentiles(times['bare'])}")
    print(f"job created -> model ready:        {percentiles(times['to_model'])}")
    print(f"bare adaptation alone:             {percentiles(times['bare_adapt'])}")
    print(f"job created -> started (pick-up):  {percentiles(times['pickup'])}")
    print(f"job started -> finished (worker):  {percentiles(times['in_worker'])}")
    ratio = statistics.median(times["job"]) / statistics.median(times["bare"])
    print(f"job p50 / bare p50: {ratio:.2f}")


def print_prediction_times(url: str, weights: bytes, model_id: str, image: bytes, base, requests):
    forward = bare_forward(weights, image, base.spec, repeats=200)
    print(f"bare forward of one image:         {percentiles(forward)}")
    for clients in (1, 16):
        latencies, rate = asyncio.run(predict_load(url, model_id, image, clients, requests))
        print(
            f"predict, {clients:2d} client(s):             {percentiles(latencies)}"
            f"  {rate:7.1f} requests/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    base_models = load_base_models(PRETRAINED_DIR)
    base = base_models.get(args.base_model)
    sets = support_sets(list(base.card["data"]["split"]["test"]), args.jobs)
    print_header(base.name)
    with tempfile.TemporaryDirectory() as folder:
        redis_url, redis_processes = redis_for(Path(folder))
        url = f"http://127.0.0.1:{args.port}"
        processes = start_service(redis_url, args.port, 1, FEWSHOT_AUTH="open")
        try:
            wait_ready(url)
            times, model_id = time_jobs(url, base, sets)
            print_job_times(times)
            weights = redis.Redis.from_url(redis_url).get(Keys("fewshot").model_weights(model_id))
            print_prediction_times(url, weights, model_id, sets[0][5][2], base, args.requests)
        finally:
            stop_all(processes)
            stop_all(redis_processes)


if __name__ == "__main__":
    main()
