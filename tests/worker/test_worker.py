"""Workers as real processes: takeover after SIGKILL, release on SIGTERM, poison jobs,
deterministic (idempotent) handlers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import torch

from common.job_record import JobRecord
from common.keys import JobKind, Keys
from models.service import AdaptJob, LabelledImages, encode_images, load_base_models
from tests.service_fixtures import SMALL_BACKBONE, job_store, new_model, service_stores
from worker.handlers import HandlerContext, handle_adapt

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _support() -> LabelledImages:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(
        0,
        256,
        (6, 1, SMALL_BACKBONE.image_size, SMALL_BACKBONE.image_size),
        generator=gen,
        dtype=torch.uint8,
    )
    return LabelledImages(images, torch.tensor([0, 0, 1, 1, 2, 2]), ["a", "b", "c"])


def _create_job(
    settings, steps: int, model_id: str = "model_w", *, adversarial: bool = True, augment: int = 0
) -> str:
    store = job_store(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
    job_settings = AdaptJob(
        eps_grid=(0.0, 0.1),
        attacks=("fgsm", "pgd-2"),
        steps=steps,
        lr=0.05,
        eps=0.1,
        adversarial=adversarial,
        augment=augment,
    )
    return store.create(
        JobKind.ADAPT,
        encode_images(_support()),
        tenant="t1",
        base_model="tiny-adml",
        settings=job_settings.to_json(),
        model_id=model_id,
        new_model=new_model(model_id),
    )


def _start_worker(settings, omp_threads: str = "1", **overrides) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "FEWSHOT_KEY_PREFIX": settings.key_prefix,
        "FEWSHOT_BASE_MODELS_DIR": str(settings.base_models_dir),
        "FEWSHOT_CLAIM_IDLE_MS": "1500",
        "FEWSHOT_HEARTBEAT_S": "0.2",
        "FEWSHOT_WORKER_BLOCK_MS": "100",
        "OMP_NUM_THREADS": omp_threads,
        **{f"FEWSHOT_{k.upper()}": str(v) for k, v in overrides.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _job(settings, job_id: str) -> dict[str, str]:
    raw = redis.Redis.from_url(settings.redis_url).hgetall(Keys(settings.key_prefix).job(job_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def _record(settings, job_id: str) -> JobRecord:
    return JobRecord.from_hash(_job(settings, job_id))


def _wait(settings, job_id: str, predicate, timeout: float = 90) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(settings, job_id)
        if predicate(job):
            return job
        if _finished(job):
            raise AssertionError(f"job finished before the awaited condition: {job}")
        time.sleep(0.05)
    raise AssertionError(f"timed out; job is {job}")


def _running(job: dict[str, str]) -> bool:
    return job["state"] == "running" and int(job["step"]) > 0


def _finished(job: dict[str, str]) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def test_a_job_survives_its_worker_killed_mid_job(settings):
    job_id = _create_job(settings, steps=1000)
    first = _start_worker(settings)
    try:
        _wait(settings, job_id, _running)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    second = _start_worker(settings)
    try:
        job = _wait(settings, job_id, _finished, timeout=240)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert job["state"] == "succeeded", job
    assert job["attempt"] == "2" and job["worker"].endswith(f"-{second.pid}")
    client = redis.Redis.from_url(settings.redis_url)
    assert service_stores(settings, client).models.weights("model_w")  # its blob, checked
    assert client.xlen(Keys(settings.key_prefix).stream) == 0  # acknowledged and deleted


def test_sigterm_gives_the_job_back_and_exits(settings):
    job_id = _create_job(settings, steps=1000)
    worker = _start_worker(settings)
    _wait(settings, job_id, _running)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    job = _job(settings, job_id)
    assert job["state"] == "queued" and job["attempt"] == "1"
    assert redis.Redis.from_url(settings.redis_url).xlen(Keys(settings.key_prefix).stream) == 1


def test_a_poison_job_fails_after_too_many_deliveries(settings):
    job_id = _create_job(settings, steps=1000)
    first = _start_worker(settings, max_deliveries=1)
    _wait(settings, job_id, _running)
    first.kill()
    first.wait()
    second = _start_worker(settings, max_deliveries=1)
    try:
        job = _wait(settings, job_id, _finished)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert job["state"] == "failed" and json.loads(job["error"])["code"] == "poison_job"
    model = Keys(settings.key_prefix).model("model_w")
    assert redis.Redis.from_url(settings.redis_url).hget(model, "state") == b"failed"


def test_handlers_are_deterministic_so_a_rerun_publishes_the_same_model(settings):
    client = redis.Redis.from_url(settings.redis_url)
    job_id = _create_job(settings, steps=3, augment=2)  # random affine copies: seeded by the job
    context = HandlerContext.build(
        service_stores(settings, client),
        load_base_models(settings.base_models_dir),
        torch.device("cpu"),
    )
    published = []
    for _ in range(2):
        publish = handle_adapt(
            context, _record(settings, job_id), lambda step, total, phase=None: None
        )
        pipe = client.pipeline()
        publish.model_writes(pipe, "model_w")
        pipe.execute()
        published.append((context.models.weights("model_w"), context.models.report("model_w")))
    assert published[0] == published[1]


def test_an_adaptation_reports_its_phases_and_ends_at_its_total(settings):
    client = redis.Redis.from_url(settings.redis_url)
    context = HandlerContext.build(
        service_stores(settings, client),
        load_base_models(settings.base_models_dir),
        torch.device("cpu"),
    )
    job_id = _create_job(settings, steps=3)
    calls: list[tuple[int, int, str]] = []
    handle_adapt(context, _record(settings, job_id), lambda *call: calls.append(call))
    phases = [phase for _, _, phase in calls]
    total = calls[0][1]  # image-passes (models.report.cost)
    each = next(step for step, _, phase in calls if phase == "adapting: step 1 of 3")
    assert next(step for step, _, phase in calls if phase.startswith("measuring")) == 3 * each
    assert all(t == total for _, t, _ in calls) and calls[-1][0] == total
    assert [step for step, _, _ in calls] == sorted(step for step, _, _ in calls)
    assert phases[:2] == ["adapting", "adapting: step 1 of 3"]
    assert "measuring robustness: adapting the robust variant, fold 2 of 2, step 3 of 3" in phases
    assert "measuring robustness: pgd-2 (attack 2 of 2) on the clean-only variant, fold 2 of 2" in (
        phases
    )
    assert phases[-1] == "writing the report"


def test_a_clean_only_job_serves_the_clean_only_fine_tune_and_says_so(settings):
    client = redis.Redis.from_url(settings.redis_url)
    context = HandlerContext.build(
        service_stores(settings, client),
        load_base_models(settings.base_models_dir),
        torch.device("cpu"),
    )
    served = {}
    for adversarial, model_id in ((True, "model_r"), (False, "model_c")):
        job_id = _create_job(settings, steps=3, model_id=model_id, adversarial=adversarial)
        publish = handle_adapt(
            context, _record(settings, job_id), lambda step, total, phase=None: None
        )
        pipe = client.pipeline()
        publish.model_writes(pipe, model_id)
        pipe.execute()
        report = json.loads(context.models.report(model_id))
        served[model_id] = (context.models.weights(model_id), report)
    (robust_weights, robust), (clean_weights, clean_only) = served["model_r"], served["model_c"]
    assert robust["served"] == "robust" and clean_only["served"] == "clean_only"
    assert clean_only["adapt"]["adversarial"] is False and robust_weights != clean_weights
    # both reports measure the same two adaptations of the same images
    assert robust["robust"] == clean_only["robust"]
    assert robust["summary"]["text"].startswith("On 6 of your images, each held out in turn")


def test_a_running_job_is_cancelled_between_steps(settings):
    job_id = _create_job(settings, steps=1000)
    worker = _start_worker(settings)
    try:
        _wait(settings, job_id, _running)
        store = job_store(redis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
        assert store.cancel(job_id) == "running"
        job = _wait(settings, job_id, _finished)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert job["state"] == "cancelled" and int(job["step"]) < 1000
    client = redis.Redis.from_url(settings.redis_url)
    assert client.hget(Keys(settings.key_prefix).model("model_w"), "state") == b"cancelled"
    assert service_stores(settings, client).models.weights_ref("model_w") is None


def test_an_untrusted_report_gets_no_headline_figures():
    from models.report import report_summary

    checks = {"robust": [{"name": "worst_monotone", "passed": True, "detail": ""}]}
    cells = [{"attack": "worst", "eps": 0.1, "mean": 0.5, "ci95": 0.1, "n": 8}]
    report = {
        "available": True,
        "source": "4-fold cross-validation",
        "examples": 8,
        "robust": cells,
        "clean_only": cells,
        "checks": checks,
        "untrusted_reason": "clean accuracy ... at or below chance",
        "summary": {"trustworthy": False, "text": "On 8 images: these figures cannot be trusted"},
        "recommendation": None,
    }
    summary = report_summary(report)
    assert summary["text"] == report["summary"]["text"] and summary["recommendation"] is None
    assert summary["trustworthy"] is False and summary["reason"] == report["untrusted_reason"]
    assert "worst_case_accuracy" not in summary
    report["untrusted_reason"] = None
    trusted = report_summary(report)
    assert trusted["trustworthy"] is True and trusted["worst_case_accuracy"]["robust"] == {
        "0.1": 0.5
    }


@pytest.mark.parametrize(("omp", "setting", "threads"), [("2", None, 1), ("1", "2", 2)])
def test_a_worker_process_runs_torch_on_the_threads_it_is_given(settings, omp, setting, threads):
    """One torch thread by default (a worker shares its cores: more threads spin-wait for a
    core another process holds), whatever OMP_NUM_THREADS says; the setting overrides it."""
    overrides = {} if setting is None else {"worker_torch_threads": setting}
    process = _start_worker(settings, omp, **overrides, log_format="text")
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("serving on" in x for x in lines):
            lines.append(process.stderr.readline().decode())
        serving = next(x for x in lines if "serving on" in x)
        assert f"with {threads} torch thread(s)" in serving, serving
    finally:
        process.terminate()
        process.wait(timeout=30)
