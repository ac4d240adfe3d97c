"""A job's progress in words (phase, place in the queue) and as server-sent events."""

from __future__ import annotations

import json

import pytest

from tests.app.test_api import assert_error, client, support  # noqa: F401 - fixture

pytestmark = pytest.mark.redis


def _events(response) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
    return events


def test_queued_jobs_say_how_many_are_ahead(client):  # noqa: F811
    files, data = support()
    first = client.post("/v1/adaptations", files=files, data=data).json()
    second = client.post("/v1/adaptations", files=files, data=data).json()
    progress = client.get(first["status_url"]).json()["progress"]  # no worker runs
    assert progress["queue_position"] == 0
    assert progress["phase"] == "queued: waiting for a free worker"
    progress = client.get(second["status_url"]).json()["progress"]
    assert (progress["queue_position"], progress["phase"]) == (1, "queued: 1 job ahead")
    assert progress["seconds_left"] is None  # no run times measured yet


def test_events_follow_a_job_to_its_end(client, worker_thread):  # noqa: F811
    # 4 classes: the report's attacks include APGD-T, long enough to be sampled (2 classes'
    # attacks can pass between two samples since the attacks run channels-last)
    files, data = support(classes=4, shots=2)
    created = client.post("/v1/adaptations", files=files, data={**data, "steps": "200"}).json()
    with client.stream("GET", f"/v1/jobs/{created['job_id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    assert {name for name, _ in events} == {"job"}
    states = [job["state"] for _, job in events]
    assert states[-1] == "succeeded" and states.count("succeeded") == 1  # then the stream ends
    phases = [job["progress"]["phase"] for _, job in events if job["state"] == "running"]
    # sampled every 0.25 s: 200 steps last long enough to be seen, the attacks too
    assert any(phase.startswith("adapting: step") for phase in phases), phases
    # the report step by step: its own adaptations' steps, then each attack on each model
    assert any(phase.startswith("measuring robustness: adapting the") for phase in phases), phases
    assert any(" (attack " in phase for phase in phases), phases
    # a time estimate from the service's first job on: its own pace once it has made a step
    running = [job["progress"] for _, job in events if job["state"] == "running"]
    stepping = [p for p in running if 0 < p["step"] < p["total"]]
    assert stepping and all(p["seconds_left"] is not None for p in stepping), running
    steps = [job["progress"]["step"] for _, job in events]
    assert steps == sorted(steps) and len(set(map(json.dumps, (j for _, j in events)))) == len(
        events
    )  # each event is a change
    assert_error(client.get("/v1/jobs/job_0123456789abcdef0123/events"), 404, "job_not_found")


def test_streams_are_capped_so_the_api_keeps_answering(settings, monkeypatch):
    import contextlib

    import httpx

    from app.routes import job_events
    from tests.service_fixtures import live_server

    small = settings.model_copy(update={"max_connections": 12})  # streams: at most 3 in all
    monkeypatch.setattr(job_events, "STREAMS_PER_TENANT", 2)
    files, data = support()
    with live_server(small) as url, httpx.Client(base_url=url, timeout=10) as http:
        job = http.post("/v1/adaptations", files=files, data=data).json()  # queued: no worker
        path = f"/v1/jobs/{job['job_id']}/events"
        with contextlib.ExitStack() as streams:
            readers = []  # kept: a dropped line iterator closes its response
            for _ in range(2):
                opened = streams.enter_context(http.stream("GET", path))
                assert opened.status_code == 200
                readers.append(opened.iter_lines())
                assert next(readers[-1]) == "event: job"  # the stream runs, and is counted
            refused = http.get(path)
            assert_error(refused, 503, "too_many_streams")  # the tenant's share
            assert refused.headers["Retry-After"] == "5"
            assert http.get("/healthz").status_code == 200
            assert http.get(job["status_url"]).status_code == 200  # polling still works
        with http.stream("GET", path) as again:  # closed streams were released
            assert again.status_code == 200
