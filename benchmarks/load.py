"""Load: adaptation jobs on several workers, then many concurrent predictions, with zero errors
expected; p50/p99 latency and throughput beside a bare model forward measured in this run.

Usage: python benchmarks/load.py [--jobs 50] [--requests 2000] [--clients 32] [--workers 2]
       [--api-processes 1] [--report full|quick|none] [--grow]
--grow runs 1 and 2 workers x 1 and 2 API processes in turn and prints the growth table.
Starts its own embedded Redis (or uses REDIS_URL), the API (`python -m app`, API keys on, rate
limits off: the load comes from one key) and the workers. Support sets: 5-way Omniglot from the
base model's test alphabets in ../shared/data/omniglot. Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.service_latency import (
    OMNIGLOT,
    bare_forward,
    print_header,
    redis_for,
    start_service,
    support_sets,
    wait_ready,
)
from cli.serve import stop_all
from common.api_keys import ApiKeys
from common.keys import Keys
from common.settings import PRETRAINED_DIR
from models.service import load_base_models

UPLOAD_CONCURRENCY = 8


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:9.1f} ms  p99 {p99 * 1000:9.1f} ms  "
        f"(n={len(values)})"
    )


async def run_jobs(
    url: str, headers: dict, sets: list, shots: int, report: str
) -> tuple[list, int, float, str]:
    """Submit every set, wait for every job; (latencies, errors, wall s, a model id)."""
    gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    latencies: list[float] = []
    errors = 0
    model_ids: list[str] = []

    async def one(client: httpx.AsyncClient, items: list) -> None:
        nonlocal errors
        support = [item for n, item in enumerate(items) if n % 10 < shots]
        files = [("images", (name, data, "image/png")) for _, name, data in support]
        started = time.perf_counter()
        async with gate:
            created = await client.post(
                f"{url}/v1/adaptations",
                files=files,
                data={"labels": [label for label, _, _ in support], "report": report},
            )
        if created.status_code != 202:
            errors += 1
            return
        body = created.json()
        while True:
            job = (await client.get(f"{url}{body['status_url']}")).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.2)
        if job["state"] != "succeeded":
            errors += 1
            return
        latencies.append(time.perf_counter() - started)
        model_ids.append(body["model_id"])

    started = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=120) as client:
        await asyncio.gather(*(one(client, items) for items in sets))
    return latencies, errors, time.perf_counter() - started, model_ids[0]


async def run_predictions(url: str, headers: dict, model_id: str, image: bytes, args):
    latencies: list[float] = []
    errors = 0

    async def client_loop(count: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(headers=headers, timeout=120) as client:
            for _ in range(count):
                started = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/models/{model_id}/predictions",
                    files=[("images", ("q.png", image, "image/png"))],
                )
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    started = time.perf_counter()
    shares = [
        args.requests // args.clients + (n < args.requests % args.clients)
        for n in range(args.clients)
    ]
    await asyncio.gather(*(client_loop(share) for share in shares))
    return latencies, errors, time.perf_counter() - started


def run_once(args, base, sets, workers: int, api_processes: int) -> tuple[float, float, int]:
    """One service of ``workers`` workers and ``api_processes`` API processes under the load;
    (jobs/min, predictions/s, failed requests)."""
    with tempfile.TemporaryDirectory() as folder:
        redis_url, redis_processes = redis_for(Path(folder))
        _, token = ApiKeys(redis.Redis.from_url(redis_url), Keys("fewshot")).create("load")
        headers = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{args.port}"
        processes = start_service(
            redis_url,
            args.port,
            workers,
            FEWSHOT_AUTH="keys",
            FEWSHOT_RATE_UPLOADS_PER_MIN="0",  # the whole load comes from one key
            FEWSHOT_RATE_PREDICTIONS_PER_MIN="0",
            OMP_NUM_THREADS="1",  # several processes share the cores
            FEWSHOT_API_PROCESSES=str(api_processes),
        )
        try:
            wait_ready(url)
            latencies, job_errors, wall, model_id = asyncio.run(
                run_jobs(url, headers, sets, args.shots, args.report)
            )
            jobs_per_min = args.jobs / wall * 60
            print(
                f"{args.jobs} adaptation jobs (5-way {args.shots}-shot, report={args.report}, "
                f"{workers} workers, {api_processes} API processes): "
                f"{summary(latencies)}  {jobs_per_min:6.1f} jobs/min  errors {job_errors}"
            )
            weights = redis.Redis.from_url(redis_url).get(Keys("fewshot").model_weights(model_id))
            image = sets[0][9][2]
            forward = bare_forward(weights, image, base.spec, repeats=300)
            print(f"bare forward of one image (this process): {summary(forward)}")
            latencies, predict_errors, wall = asyncio.run(
                run_predictions(url, headers, model_id, image, args)
            )
            per_s = len(latencies) / wall
            print(
                f"{args.requests} predictions, {args.clients} clients: {summary(latencies)}  "
                f"{per_s:7.1f} requests/s  errors {predict_errors}"
            )
        finally:
            stop_all(processes)
            stop_all(redis_processes)
    return jobs_per_min, per_s, job_errors + predict_errors


GROWTH = ((1, 1), (2, 1), (1, 2), (2, 2))  # (workers, API processes), the first the reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--report", default="full", choices=["full", "quick", "none"])
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--grow",
        action="store_true",
        help="run 1 and 2 workers x 1 and 2 API processes, one after the other, and print how "
        "throughput grows against 1 x 1 (--workers and --api-processes are then ignored)",
    )
    args = parser.parse_args()
    if not OMNIGLOT.exists():
        sys.exit(f"no Omniglot data at {OMNIGLOT}")
    base = load_base_models(PRETRAINED_DIR).get(None)
    sets = support_sets(list(base.card["data"]["split"]["test"]), args.jobs)
    print_header(base.name)
    if not args.grow:
        return 1 if run_once(args, base, sets, args.workers, args.api_processes)[2] else 0
    rows = {shape: run_once(args, base, sets, *shape) for shape in GROWTH}
    jobs_1, predictions_1, _ = rows[GROWTH[0]]
    print("| workers | API processes | jobs/min | vs 1 x 1 | predictions/s | vs 1 x 1 | errors |")
    print("|---|---|---|---|---|---|---|")
    for (workers, api), (jobs, predictions, errors) in rows.items():
        print(
            f"| {workers} | {api} | {jobs:.1f} | {jobs / jobs_1:.2f}x | {predictions:.1f} | "
            f"{predictions / predictions_1:.2f}x | {errors} |"
        )
    return 1 if any(errors for _, _, errors in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
