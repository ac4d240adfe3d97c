"""Prediction throughput: images/s for 1, 16 and 64 images per request at 1, 8 and 32 clients,
beside the bare batched forward pass and `/healthz` (the HTTP stack's ceiling), all measured in
this one run on the same images.

Usage: python benchmarks/predict_throughput.py [--seconds 6] [--api-processes 1] [--set NAME=VALUE]
Starts its own embedded Redis (or uses REDIS_URL), the API (`python -m app`, open mode) and one
worker, adapts one 5-way 5-shot model on Omniglot test-alphabet drawings (../shared/data), then
loads the API from 4 client processes over keep-alive connections (a minimal HTTP/1.1 client on
asyncio streams, so the clients take as little of the machine's CPU as they can).
Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.http_load import (
    CLIENT_PROCESSES,
    get_request,
    measure,
    multipart_request,
)
from benchmarks.service_latency import (
    OMNIGLOT,
    print_header,
    redis_for,
    start_service,
    support_sets,
    wait_ready,
)
from cli.serve import stop_all
from common.keys import Keys
from common.settings import PRETRAINED_DIR
from models.core import inference_graph
from models.data import decode_for
from models.service import (
    load_adapted,
    load_base_models,
    probabilities,
)


def bare_batched(weights: bytes, images: list[bytes], base, batch: int, seconds: float):
    """Images/s on ``batch`` decoded images at a time, in this process with all its cores:
    {the adapted model's eager forward pass, the same compiled as the API runs it, that and the
    base model's out-of-domain check (every prediction runs both)}."""
    model, _ = load_adapted(weights, torch.device("cpu"))
    compiled = inference_graph(model)
    decoded = [torch.from_numpy(decode_for(base.spec, data, source="q")) for data in images]
    x = torch.stack([decoded[n % len(decoded)] for n in range(batch)])
    steps = {
        "eager": lambda: probabilities(model, x),
        "compiled": lambda: probabilities(compiled, x),
        "compiled+check": lambda: (probabilities(compiled, x), base.check_domain(x)),
    }
    rates = {}
    for name, step in steps.items():
        step()
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            step()
            done += batch
        rates[name] = done / (time.perf_counter() - started)
    return rates


def decode_seconds(images: list[bytes], base, repeats: int = 5) -> float:
    """Seconds one core spends decoding one of ``images`` as the API does (decode_for)."""
    started = time.perf_counter()
    for _ in range(repeats):
        for data in images:
            decode_for(base.spec, data, source="q")
    return (time.perf_counter() - started) / (repeats * len(images))


def one_image_bound(healthz_rps: float, batched_rate: float, decode_s: float) -> float:
    """Requests/s of a server whose 1-image request costs what `/healthz` costs plus the
    decode (on one of the machine's cores) and the micro-batched forward pass and check, with
    nothing else, every stage on the same cores (a serial-cost bound: it holds where, as on a
    small machine, the stages cannot overlap on idle cores)."""
    cores = len(os.sched_getaffinity(0))  # the cores /healthz and the API may use
    return 1.0 / (1.0 / healthz_rps + 1.0 / batched_rate + decode_s / cores)


def adapt_one(url: str, items: list) -> str:
    support = [item for n, item in enumerate(items) if n % 10 < 5]
    created = httpx.post(
        f"{url}/v1/adaptations",
        files=[("images", (f, d, "image/png")) for _, f, d in support],
        data={"labels": [label for label, _, _ in support], "steps": "20"},
        timeout=60,
    ).json()
    while True:
        job = httpx.get(f"{url}{created['status_url']}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    if job["state"] != "succeeded":
        raise RuntimeError(f"the adaptation failed: {job}")
    return created["model_id"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a FEWSHOT_ setting"
    )
    return parser.parse_args()


def bare_rates(weights: bytes, queries: list[bytes], base, seconds: float):
    """The in-process figures the HTTP ones are read against (printed): batch 256 images/s by
    stage, batch 32 compiled+check images/s, and the decode seconds per image."""
    bare = bare_batched(weights, queries, base, 256, seconds)
    print(
        f"bare batched forward, batch 256, {torch.get_num_threads()} torch threads, "
        "images/s: " + ", ".join(f"{name} {rate:.0f}" for name, rate in bare.items())
    )
    bare_32 = bare_batched(weights, queries, base, 32, seconds)["compiled+check"]
    decode_s = decode_seconds(queries, base)
    print(
        f"batch 32 (a full micro-batch at 32 clients), compiled+check: {bare_32:.0f} "
        f"images/s; decode: {decode_s * 1e6:.0f} us per image on one core"
    )
    return bare, bare_32, decode_s


def healthz_rates(pool, host: str, port: int, seconds: float) -> tuple[dict[int, float], bool]:
    """`/healthz` requests/s at 1, 8 and 32 clients (printed), and whether any failed."""
    healthz, failed = {}, False
    for clients in (1, 8, 32):
        request = get_request(host, port, "/healthz")
        cell = measure(pool, host, port, request, clients, seconds)
        healthz[clients] = cell["rps"]
        failed |= bool(cell["failures"])
        print(
            f"GET /healthz, {clients:2d} clients: {cell['rps']:7.0f} requests/s  "
            f"p50 {cell['p50_ms']:6.1f} ms  failures {len(cell['failures'])}"
        )
    return healthz, failed


def prediction_rates(pool, host, port, path, queries, bare, healthz, seconds: float) -> bool:
    """The table of prediction throughput (printed); whether any request failed."""
    failed = False
    print(
        "images/request  clients  requests/s  images/s  of eager  of compiled  "
        "of compiled+check  p50 ms  failures"
    )
    for per_request in (1, 16, 64):
        images = [queries[n % len(queries)] for n in range(per_request)]
        request = multipart_request(host, port, path, images)
        for clients in (1, 8, 32):
            cell = measure(pool, host, port, request, clients, seconds)
            failed |= bool(cell["failures"])
            rate = cell["rps"] * per_request
            print(
                f"{per_request:14d}  {clients:7d}  {cell['rps']:10.1f}  "
                f"{rate:8.0f}  {rate / bare['eager']:8.2f}  "
                f"{rate / bare['compiled']:11.2f}  "
                f"{rate / bare['compiled+check']:17.2f}  {cell['p50_ms']:6.1f}  "
                f"{len(cell['failures'])}"
                + (
                    f"  ({cell['rps'] / healthz[clients]:.2f} of /healthz)"
                    if per_request == 1
                    else ""
                )
            )
    return failed


def measure_service(args, url: str, redis_url: str, processes, items, queries, base) -> bool:
    """Adapt one model, stop the worker, and print every figure; whether any request failed."""
    host = "127.0.0.1"
    wait_ready(url)
    model_id = adapt_one(url, items)
    stop_all(processes[1:])  # the worker is idle from here: out of the measurement
    weights = redis.Redis.from_url(redis_url).get(Keys("fewshot").model_weights(model_id))
    bare, bare_32, decode_s = bare_rates(weights, queries, base, args.seconds)
    path = f"/v1/models/{model_id}/predictions"
    context = multiprocessing.get_context("spawn")
    with context.Pool(CLIENT_PROCESSES) as pool:
        pool.map(time.sleep, [0.5] * CLIENT_PROCESSES)  # every process started
        healthz, failed = healthz_rates(pool, host, args.port, args.seconds)
        failed |= prediction_rates(
            pool, host, args.port, path, queries, bare, healthz, args.seconds
        )
        bound = one_image_bound(healthz[32], bare_32, decode_s)
        print(
            "upper bound for 1-image requests at 32 clients (the /healthz cost + decode + "
            f"batch-32 forward and check, nothing else): {bound:.0f} requests/s = "
            f"{bound / healthz[32]:.2f} of /healthz"
        )
    return failed


def main() -> int:
    args = parse_args()
    if not OMNIGLOT.exists():
        sys.exit(f"no Omniglot data at {OMNIGLOT}")
    base = load_base_models(PRETRAINED_DIR).get(None)
    items = support_sets(list(base.card["data"]["split"]["test"]), 1)[0]
    queries = [data for n, (_, _, data) in enumerate(items) if n % 10 >= 5]  # 25 held out
    print_header(base.name)
    env = {"FEWSHOT_AUTH": "open", "FEWSHOT_API_PROCESSES": str(args.api_processes)}
    env.update(
        ("FEWSHOT_" + name.upper(), value) for name, value in (s.split("=", 1) for s in args.set)
    )
    with tempfile.TemporaryDirectory() as folder:
        redis_url, redis_processes = redis_for(Path(folder))
        url = f"http://127.0.0.1:{args.port}"
        processes = start_service(redis_url, args.port, 1, **env)
        try:
            failed = measure_service(args, url, redis_url, processes, items, queries, base)
        finally:
            stop_all(processes[:1])
            stop_all(redis_processes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
