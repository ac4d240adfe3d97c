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
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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

CLIENT_PROCESSES = 4
BOUNDARY = "fewshotbench"


def multipart_request(host: str, port: int, path: str, images: list[bytes]) -> bytes:
    """A whole keep-alive POST of ``images`` as multipart ``images`` files."""
    body = b""
    for n, data in enumerate(images):
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images"; '
                f'filename="q{n}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


async def _connection(host, port, request, start_at, stop_at, latencies, failures) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    try:
        while time.time() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(status)
    finally:
        writer.close()


def client_process(args: tuple) -> tuple[list[float], list[int]]:
    """One load process: ``connections`` keep-alive connections sending ``request`` in a loop
    between ``start_at`` and ``stop_at`` (wall clock); (latencies of 200s, other statuses)."""
    host, port, request, connections, start_at, stop_at = args
    latencies: list[float] = []
    failures: list[int] = []

    async def run() -> None:
        await asyncio.gather(
            *(
                _connection(host, port, request, start_at, stop_at, latencies, failures)
                for _ in range(connections)
            )
        )

    asyncio.run(run())
    return latencies, failures


def measure(pool, host, port, request: bytes, clients: int, seconds: float) -> dict:
    """Requests/s, p50 latency and failures of ``clients`` connections over ``seconds``."""
    shares = [clients // CLIENT_PROCESSES + (n < clients % CLIENT_PROCESSES) for n in range(4)]
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    jobs = [(host, port, request, share, start_at, stop_at) for share in shares if share]
    results = pool.map(client_process, jobs)
    latencies = [value for values, _ in results for value in values]
    failures = [status for _, statuses in results for status in statuses]
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "failures": failures,
    }


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a FEWSHOT_ setting"
    )
    args = parser.parse_args()
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
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        redis_url, redis_processes = redis_for(Path(folder))
        host, url = "127.0.0.1", f"http://127.0.0.1:{args.port}"
        processes = start_service(redis_url, args.port, 1, **env)
        try:
            wait_ready(url)
            model_id = adapt_one(url, items)
            stop_all(processes[1:])  # the worker is idle from here: out of the measurement
            weights = redis.Redis.from_url(redis_url).get(Keys("fewshot").model_weights(model_id))
            bare = bare_batched(weights, queries, base, 256, args.seconds)
            print(
                f"bare batched forward, batch 256, {torch.get_num_threads()} torch threads, "
                "images/s: " + ", ".join(f"{name} {rate:.0f}" for name, rate in bare.items())
            )
            bare_32 = bare_batched(weights, queries, base, 32, args.seconds)["compiled+check"]
            decode_s = decode_seconds(queries, base)
            print(
                f"batch 32 (a full micro-batch at 32 clients), compiled+check: {bare_32:.0f} "
                f"images/s; decode: {decode_s * 1e6:.0f} us per image on one core"
            )
            path = f"/v1/models/{model_id}/predictions"
            context = multiprocessing.get_context("spawn")
            with context.Pool(CLIENT_PROCESSES) as pool:
                pool.map(time.sleep, [0.5] * CLIENT_PROCESSES)  # every process started
                healthz = {}
                for clients in (1, 8, 32):
                    cell = measure(
                        pool,
                        host,
                        args.port,
                        get_request(host, args.port, "/healthz"),
                        clients,
                        args.seconds,
                    )
                    healthz[clients] = cell["rps"]
                    failed |= bool(cell["failures"])
                    print(
                        f"GET /healthz, {clients:2d} clients: {cell['rps']:7.0f} requests/s  "
                        f"p50 {cell['p50_ms']:6.1f} ms  failures {len(cell['failures'])}"
                    )
                print(
                    "images/request  clients  requests/s  images/s  of eager  of compiled  "
                    "of compiled+check  p50 ms  failures"
                )
                for per_request in (1, 16, 64):
                    images = [queries[n % len(queries)] for n in range(per_request)]
                    request = multipart_request(host, args.port, path, images)
                    for clients in (1, 8, 32):
                        cell = measure(pool, host, args.port, request, clients, args.seconds)
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
                bound = one_image_bound(healthz[32], bare_32, decode_s)
                print(
                    "upper bound for 1-image requests at 32 clients (the /healthz cost + decode + "
                    f"batch-32 forward and check, nothing else): {bound:.0f} requests/s = "
                    f"{bound / healthz[32]:.2f} of /healthz"
                )
        finally:
            stop_all(processes[:1])
            stop_all(redis_processes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
