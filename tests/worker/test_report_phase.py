"""The report as a later phase: an adaptation publishes its model (ready, answering
predictions) as soon as it is adapted; its report follows from the same job. Whatever ends
the job during the report (a cancel, a delete, a bug, a worker shutdown) leaves a state that
says so, and never a model that stops answering."""

from __future__ import annotations

import logging
import threading

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support, wait_for
from tests.app.test_redis_faults import OwnRedis, make_full
from tests.service_fixtures import eventually, image_bytes
from worker import handlers

pytestmark = pytest.mark.redis

QUERY = [("images", (f"q{c}.png", image_bytes(c, 7), "image/png")) for c in (0, 1)]


@pytest.fixture
def report_gate(monkeypatch):
    """The report phase waits (still hearing cancels and shutdowns) until the event is set;
    set ``failing`` to make it raise then."""
    gate = threading.Event()
    gate.failing = False
    report = handlers._report

    def held(ctx, base, settings, labelled, validation, on_progress):
        while not gate.wait(0.05):
            on_progress(0, "held by the test")
        if gate.failing:
            raise RuntimeError("a bug in the report")
        return report(ctx, base, settings, labelled, validation, on_progress)

    monkeypatch.setattr(handlers, "_report", held)
    yield gate
    gate.set()


def _adapt(client: TestClient) -> dict:
    files, data = support(classes=2, shots=2)
    created = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"})
    assert created.status_code == 202, created.text
    return created.json()


def _published(client: TestClient, created: dict) -> dict:
    """The job, once it has published its model and runs on (the report held)."""
    job = eventually(
        lambda: (j := client.get(f"/v1/jobs/{created['job_id']}").json())["model_ready"] and j,
        "the model is published",
        timeout=120,
    )
    assert job["state"] == "running", job
    return job


def test_the_model_answers_while_its_report_is_computed(settings, start_worker, report_gate):
    with TestClient(create_app(settings)) as client:
        start_worker(settings)
        created = _adapt(client)
        job = _published(client, created)
        assert job["model_url"] == f"/v1/models/{created['model_id']}"
        model = client.get(job["model_url"]).json()
        assert model["state"] == "ready" and model["report_state"] == "pending", model
        assert model["report_summary"]["pending"] is True
        pending = client.get(f"{job['model_url']}/report").json()
        assert pending["available"] is False and pending["pending"] is True, pending
        assert created["job_id"] in pending["summary"]["text"]
        pending_png = client.get(f"{job['model_url']}/report.png")
        assert pending_png.status_code == 200
        assert pending_png.headers["Cache-Control"] == "no-store"  # it will change
        predicted = client.post(f"{job['model_url']}/predictions", files=QUERY)
        assert predicted.status_code == 200, predicted.text

        report_gate.set()
        finished = wait_for(client, created["job_id"])
        assert finished["state"] == "succeeded", finished
        assert finished["model_ready"] <= finished["finished"]
        model = client.get(job["model_url"]).json()
        assert model["report_state"] == "done" and model["report_summary"]["available"], model
        report = client.get(f"{job['model_url']}/report").json()
        assert report["available"] is True and "pending" not in report
        done_png = client.get(f"{job['model_url']}/report.png")
        assert done_png.content != pending_png.content
        assert done_png.headers["Cache-Control"] == "private, max-age=60"
        again = client.post(f"{job['model_url']}/predictions", files=QUERY).json()
        assert again["predictions"] == predicted.json()["predictions"]  # the same weights


@pytest.mark.parametrize("ending", ["cancel", "bug"])
def test_a_job_ending_during_the_report_leaves_the_model_ready(
    settings, start_worker, report_gate, ending
):
    with TestClient(create_app(settings)) as client:
        start_worker(settings)
        created = _adapt(client)
        job = _published(client, created)
        if ending == "cancel":
            assert client.post(f"/v1/jobs/{created['job_id']}/cancel").status_code == 202
            expected = "cancelled"
        else:
            report_gate.failing = True
            report_gate.set()
            expected = "failed"
        finished = wait_for(client, created["job_id"])
        assert finished["state"] == expected, finished
        model = client.get(job["model_url"]).json()
        assert model["state"] == "ready" and model["report_state"] == "unfinished", model
        report = client.get(f"{job['model_url']}/report").json()
        assert report["available"] is False and expected in report["reason"], report
        assert "pending" not in report and report["level"] == "full"  # as the pending one said
        assert report["threat_model"]["norm"] == "L-inf"
        assert model["report_summary"]["reason"] == report["reason"]
        assert model["report_summary"]["level"] == "full"
        predicted = client.post(f"{job['model_url']}/predictions", files=QUERY)
        assert predicted.status_code == 200, predicted.text


def test_deleting_a_model_whose_report_is_pending_stops_its_job(
    settings, start_worker, report_gate
):
    with TestClient(create_app(settings)) as client:
        start_worker(settings)
        created = _adapt(client)
        job = _published(client, created)
        assert client.delete(job["model_url"]).status_code == 204
        finished = wait_for(client, created["job_id"])  # the gate stays closed: a cancel ends it
        assert finished["state"] == "cancelled", finished
        assert_error(client.get(job["model_url"]), 404, "model_not_found")
        services = client.app.state.services
        assert services.store.models.report(created["model_id"]) is None


def test_a_job_given_back_during_the_report_keeps_its_model_and_is_not_adapted_again(
    settings, start_worker, report_gate, monkeypatch
):
    adaptations = []
    adapt = handlers.adapt_and_deploy
    monkeypatch.setattr(
        handlers, "adapt_and_deploy", lambda *a, **k: adaptations.append(1) or adapt(*a, **k)
    )
    with TestClient(create_app(settings)) as client:
        first = start_worker(settings, "w1")
        created = _adapt(client)
        job = _published(client, created)
        services = client.app.state.services
        weights = services.store.models.weights(created["model_id"])
        first.stop.set()  # SIGTERM: the job goes back to the queue at its next progress call
        eventually(
            lambda: client.get(f"/v1/jobs/{created['job_id']}").json()["state"] == "queued",
            "the job is given back",
        )
        model = client.get(job["model_url"]).json()
        assert model["state"] == "ready" and model["report_state"] == "pending", model
        assert client.post(f"{job['model_url']}/predictions", files=QUERY).status_code == 200

        start_worker(settings, "w2")
        report_gate.set()
        finished = wait_for(client, created["job_id"])
        assert finished["state"] == "succeeded" and finished["attempt"] == 2, finished
        assert adaptations == [1]  # the second attempt went straight to the report
        assert services.store.models.weights(created["model_id"]) == weights
        assert client.get(job["model_url"]).json()["report_state"] == "done"


def test_a_model_whose_report_is_pending_is_not_evicted(settings, start_worker, report_gate):
    capped = settings.model_copy(update={"max_models_per_tenant": 1})
    with TestClient(create_app(capped)) as client:
        start_worker(capped)
        created = _adapt(client)
        _published(client, created)
        files, data = support(classes=2, shots=2)
        refused = client.post("/v1/adaptations", files=files, data=data)
        assert_error(refused, 409, "model_cap_reached")
        report_gate.set()
        assert wait_for(client, created["job_id"])["state"] == "succeeded"
        files, data = support(classes=2, shots=2)
        assert client.post("/v1/adaptations", files=files, data=data).status_code == 202


def test_cancelling_a_given_back_job_leaves_its_published_model_ready(
    settings, start_worker, report_gate
):
    """Queued again after publishing (its worker stopped), the job is cancelled at once by
    the cancel script: the model stays ready, its report says why there is none."""
    with TestClient(create_app(settings)) as client:
        worker = start_worker(settings, "w1")
        created = _adapt(client)
        job = _published(client, created)
        worker.stop.set()
        eventually(
            lambda: client.get(f"/v1/jobs/{created['job_id']}").json()["state"] == "queued",
            "the job is given back",
        )
        cancelled = client.post(f"/v1/jobs/{created['job_id']}/cancel").json()
        assert cancelled["state"] == "cancelled", cancelled
        model = client.get(job["model_url"]).json()
        assert model["state"] == "ready" and model["report_state"] == "unfinished", model
        report = client.get(f"{job['model_url']}/report").json()
        assert report["available"] is False and "cancelled" in report["reason"], report
        assert client.post(f"{job['model_url']}/predictions", files=QUERY).status_code == 200


def test_a_full_redis_at_publication_publishes_the_model_with_its_report(
    tmp_path, settings, start_worker, report_gate, monkeypatch, caplog
):
    """Redis refuses the early publication (maxmemory): the job goes on, and the model is
    published with its report once there is room, not thrown away and adapted again."""
    full = OwnRedis(tmp_path, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
    full.start()
    adapted, filled = threading.Event(), threading.Event()
    adapt = handlers.adapt_and_deploy

    def adapt_then_wait(*args, **kwargs):
        deployed = adapt(*args, **kwargs)
        adapted.set()
        assert filled.wait(60)
        return deployed

    monkeypatch.setattr(handlers, "adapt_and_deploy", adapt_then_wait)
    caplog.set_level(logging.WARNING, logger="worker")
    try:
        settings = settings.model_copy(update={"redis_url": full.url})
        store = redis.Redis.from_url(full.url)
        with TestClient(create_app(settings)) as client:
            start_worker(settings)
            created = _adapt(client)
            assert adapted.wait(120)
            make_full(store)
            filled.set()
            eventually(lambda: "published with its report" in caplog.text, "publish refused")
            model = client.get(f"/v1/models/{created['model_id']}").json()
            assert model["state"] == "pending", model  # nothing half-published
            store.delete(*store.keys("filler:*"))
            report_gate.set()
            finished = wait_for(client, created["job_id"])
            assert finished["state"] == "succeeded" and finished["attempt"] == 1, finished
            model = client.get(f"/v1/models/{created['model_id']}").json()
            assert model["state"] == "ready" and model["report_state"] == "done", model
            query = client.post(f"/v1/models/{created['model_id']}/predictions", files=QUERY)
            assert query.status_code == 200, query.text
    finally:
        full.kill()


def test_a_pending_report_whose_job_is_gone_is_shown_unfinished(
    settings, start_worker, report_gate
):
    """The job's record expired or Redis lost it mid-report: the report can never come, so
    the model says so (and keeps answering) instead of "being computed" for ever."""
    with TestClient(create_app(settings)) as client:
        start_worker(settings)
        created = _adapt(client)
        job = _published(client, created)
        services = client.app.state.services
        services.client.delete(services.keys.job(created["job_id"]))  # as when it is lost
        model = client.get(job["model_url"]).json()
        assert model["state"] == "ready" and model["report_state"] == "unfinished", model
        listed = client.get("/v1/models").json()["models"]
        assert [m["report_state"] for m in listed] == ["unfinished"]
        report = client.get(f"{job['model_url']}/report").json()
        assert report["available"] is False and "is gone" in report["reason"], report
        assert report["level"] == "full" and "pending" not in report
        chart = client.get(f"{job['model_url']}/report.png")
        assert chart.status_code == 200 and chart.headers["Cache-Control"] != "no-store"
        assert client.post(f"{job['model_url']}/predictions", files=QUERY).status_code == 200


@pytest.mark.parametrize("phase", ["adaptation", "report"])
def test_a_model_whose_job_is_gone_does_not_hold_a_slot_of_the_cap(
    settings, start_worker, report_gate, phase, caplog
):
    """A pending model or report whose job's record is gone will never finish: it is evicted
    like a finished model instead of holding the tenant's cap until its TTL."""
    capped = settings.model_copy(update={"max_models_per_tenant": 1})
    with TestClient(create_app(capped)) as client:
        if phase == "report":
            start_worker(capped)
        created = _adapt(client)
        if phase == "report":
            _published(client, created)
        services = client.app.state.services
        model_url = f"/v1/models/{created['model_id']}"
        assert client.get(model_url).json()["state"] == (
            "ready" if phase == "report" else "pending"
        )
        files, data = support(classes=2, shots=2)
        refused = client.post("/v1/adaptations", files=files, data=data)
        assert_error(refused, 409, "model_cap_reached")  # its job still exists: it waits
        services.client.delete(services.keys.job(created["job_id"]))  # as when it is lost
        files, data = support(classes=2, shots=2)
        accepted = client.post("/v1/adaptations", files=files, data=data)
        assert accepted.status_code == 202, accepted.text
        evicted = client.get(model_url).json()
        assert evicted["state"] == "evicted", evicted
        if phase == "report":  # the worker's report, once done, has no model to write to
            caplog.set_level(logging.WARNING, logger="worker")
            report_gate.set()
            assert wait_for(client, accepted.json()["job_id"])["state"] == "succeeded"
            assert client.get(model_url).json()["state"] == "evicted"
            model_id = created["model_id"]
            assert services.store.models.weights(model_id) is None
            assert services.store.models.report(model_id) is None
            assert "lost its record while running" in caplog.text, caplog.text
