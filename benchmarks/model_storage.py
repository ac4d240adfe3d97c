"""What one adapted model costs in Redis and in the artifact store, at scale, and how fast a
model that no API process has loaded yet answers its first prediction.

Usage: python benchmarks/model_storage.py [--models 10000] [--adapted 5] [--predictions 200]
       [--artifacts URL | --s3-server]

1. ``--adapted`` models go the whole way: an adaptation job (the shipped base model, 5-way
   2-shot on drawn images, report=quick) run by a real worker; Redis memory per model is read
   with MEMORY USAGE over its record, report and index entry.
2. ``--models`` more are published through the store's real publishing path (a job created,
   started and finished with the model's weights blob and report, as the worker does), reusing
   the first model's weights and report; Redis ``used_memory`` before and after, and the
   artifact store's bytes.
3. Predictions through the API (in-process, open mode): a model not in the API's cache (cold,
   its weights read from the store, one after another: each one's graph compiles in the
   background while the next is asked) and the same model again once the graphs are compiled
   (hot), ``--predictions`` each.

Redis: an embedded one in a fresh folder (or REDIS_URL, under a private key prefix).
Artifacts: a fresh folder, or ``--artifacts`` (e.g. s3://bucket with AWS_* variables), or with
``--s3-server`` a fresh bucket of an S3 server started for the run on this machine (moto, as the
tests use: tests/common/s3_server.py), so cold predictions read weights over S3's protocol.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import redis
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth import OPEN_CALLER
from app.main import create_app
from benchmarks.service_latency import print_header, redis_for
from cli.serve import stop_all
from common.keys import JobKind, JobState, ModelState
from common.model_record import ModelRecord
from common.settings import Settings
from common.stores import Stores
from models.report import unfinished_report
from models.service import load_base_models
from tests.common.s3_server import start_s3_server
from worker.runner import Worker


def drawing(cls: int, index: int) -> bytes:
    """A PNG of pen strokes on white, the class's strokes jittered per image."""
    strokes = np.random.default_rng(cls).uniform(20, 85, (3, 3, 2))
    strokes = strokes + np.random.default_rng(100 * cls + index).normal(0, 2.5, strokes.shape)
    image = Image.new("L", (105, 105), 255)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line([tuple(point) for point in stroke], fill=0, width=5, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def adapt(client: TestClient, n_way: int = 5, shots: int = 2) -> str:
    """A 5-way 2-shot model with a quick report (2 shots: the report has figures)."""
    pairs = [(c, i) for c in range(n_way) for i in range(shots)]
    files = [("images", (f"{c}_{i}.png", drawing(c, i), "image/png")) for c, i in pairs]
    data = {"labels": [f"class-{c}" for c, _ in pairs], "report": "quick"}
    created = client.post("/v1/adaptations", files=files, data=data)
    assert created.status_code == 202, created.text
    while True:
        job = client.get(created.json()["status_url"]).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", job
            return created.json()["model_id"]
        time.sleep(0.2)


def model_bytes(stores: Stores, model_id: str, tenant: str) -> int:
    """Redis bytes one model holds: its record, its report, its share of its tenant's index."""
    keys = stores.keys
    held = [keys.model(model_id), keys.model_report(model_id), keys.model_weights(model_id)]
    own = sum(int(stores.client.memory_usage(key) or 0) for key in held)
    index = keys.models_index(tenant)
    return own + int(stores.client.memory_usage(index) or 0) // max(1, stores.client.zcard(index))


def publish(stores: Stores, template: ModelRecord, weights: bytes, report: dict, tenant: str):
    """One model through the store's publishing path, as a worker finishes an adaptation."""
    summary = {"available": True}
    model = ModelRecord(
        id=f"model_{uuid.uuid4().hex[:20]}",
        tenant=tenant,
        state=ModelState.PENDING,
        created=time.time(),
        base_model=template.base_model,
        classes=template.classes,
        settings=template.settings,
    )
    job_id = stores.jobs.create(
        JobKind.ADAPT,
        b"",
        tenant=tenant,
        base_model=template.base_model,
        settings=template.settings,
        new_model=model,
        model_cap=10**9,
    )
    stores.queue.client.xtrim(stores.keys.stream, maxlen=0)  # nobody is to run it
    attempt = stores.jobs.start(job_id, "benchmark", 3)
    ref = stores.models.put_weights(model.id, weights)
    report_ref = stores.models.put_report(model.id, report)

    def writes(pipe: redis.client.Pipeline, model_id: str) -> None:
        stores.models.published_writes(pipe, model_id, ref, report_ref, summary, done=True)

    stores.jobs.finish(job_id, attempt, JobState.SUCCEEDED, model_writes=writes)
    return model.id


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    median = statistics.median(ordered)
    return f"p50 {1000 * median:.1f} ms, p95 {1000 * p95:.1f} ms (n={len(ordered)})"


def time_predictions(client: TestClient, model_ids: list[str], hot: bool) -> list[float]:
    query = [("images", ("q.png", drawing(1, 9), "image/png"))]
    times = []
    for model_id in model_ids:
        if hot:
            client.post(f"/v1/models/{model_id}/predictions", files=query)
        started = time.perf_counter()
        answer = client.post(f"/v1/models/{model_id}/predictions", files=query)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--adapted", type=int, default=5)
    parser.add_argument("--predictions", type=int, default=200)
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--artifacts", default="")
    store.add_argument("--s3-server", action="store_true", help="artifacts in a local S3 server")
    args = parser.parse_args()
    base_models = load_base_models(Settings().base_models_dir)
    print_header(base_models.default)
    s3 = start_s3_server() if args.s3_server else None
    with tempfile.TemporaryDirectory() as folder:
        redis_url, processes = redis_for(Path(folder))
        try:
            if s3 is not None:
                os.environ.update(s3.environment())
                args.artifacts = f"s3://{s3.new_bucket()}"
            run(args, redis_url, Path(folder), base_models)
        finally:
            stop_all(processes)
            if s3 is not None:
                s3.stop()


def run(args: argparse.Namespace, redis_url: str, folder: Path, base_models) -> None:
    settings = Settings(
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        auth="open",
        open_hosts="127.0.0.1,testserver",  # the in-process client's Host
        artifacts_url=args.artifacts or str(folder / "artifacts"),
        max_models_per_tenant=10**9,
    )
    stores = Stores.build(settings, redis.Redis.from_url(redis_url), unfinished_report)
    print(f"artifacts: {settings.artifacts_location}; redis: {redis_url}")
    with TestClient(create_app(settings)) as client:
        adapted = adapt_with_a_worker(settings, client, base_models, args.adapted)
        per_model = [model_bytes(stores, model_id, OPEN_CALLER.tenant) for model_id in adapted]
        print(
            f"adapted by a worker: {len(adapted)} models; Redis bytes per model (record, "
            f"report, index share): {statistics.median(per_model):.0f} median"
        )
        published = publish_many(stores, adapted[0], args.models)
        chosen = random.Random(1).sample(published, min(args.predictions, len(published)))
        cold = time_predictions(client, chosen, hot=False)
        print(f"prediction, model not in the API's cache: {percentiles(cold)}")
        client.app.state.services.cache.wait_for_graphs()  # hot: compiled graphs answer
        hot = time_predictions(client, chosen[:50], hot=True)
        print(f"prediction, model in the API's cache:     {percentiles(hot)}")


def adapt_with_a_worker(settings: Settings, client: TestClient, base_models, count: int):
    worker = Worker(settings, redis.Redis.from_url(settings.redis_url), base_models)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        return [adapt(client) for _ in range(count)]
    finally:
        worker.stop.set()
        thread.join()


def publish_many(stores: Stores, model_id: str, count: int) -> list[str]:
    """``count`` copies of the model through the publishing path; prints what they hold."""
    tenant = OPEN_CALLER.tenant
    template = stores.models.get(model_id, tenant)
    assert template is not None
    weights = stores.models.weights(model_id)
    report = json.loads(stores.models.report(model_id) or b"{}")
    before = int(stores.client.info("memory")["used_memory"])
    started = time.perf_counter()
    published = [publish(stores, template, weights, report, tenant) for _ in range(count)]
    elapsed = time.perf_counter() - started
    after = int(stores.client.info("memory")["used_memory"])
    print(
        f"published {count} models in {elapsed:.0f} s; Redis used_memory {before / 2**20:.1f}"
        f" -> {after / 2**20:.1f} MiB: {(after - before) / count:.0f} bytes per model (its "
        f"record, report and index entry, and its finished job's record until it expires); "
        f"{2**30 * count / max(1, after - before):.0f} models per GiB"
    )
    sample = random.Random(0).sample(published, min(20, len(published)))
    own = statistics.median(model_bytes(stores, m, tenant) for m in sample)
    print(f"Redis bytes per model (MEMORY USAGE of its own keys): {own:.0f} median")
    blobs = list(stores.models.artifacts.list("models/"))
    total = sum(b.size for b in blobs)
    reports = sum(b.size for b in blobs if b.name.endswith(".report.json"))
    print(
        f"artifact store: {len(blobs)} blobs, {total / 2**20:.1f} MiB: "
        f"{total / len(published) / 1024:.0f} KiB per model, of which its report "
        f"{reports / len(published) / 1024:.1f} KiB"
    )
    return published


if __name__ == "__main__":
    main()
