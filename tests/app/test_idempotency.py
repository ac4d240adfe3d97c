"""Idempotency-Key: a retried POST answers the first job, never makes a second one."""

from __future__ import annotations

import json

import pytest
import redis

from app.idempotency import HEADER
from common.keys import Keys
from tests.app.test_api import assert_error, client, support  # noqa: F401 - fixture

pytestmark = pytest.mark.redis


def _models(client) -> int:  # noqa: F811
    return client.get("/v1/models").json()["total"]


def test_a_repeat_answers_the_first_job_and_makes_no_second(client):  # noqa: F811
    files, data = support()
    first = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k-1"})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    again = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k-1"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # same job, same model (another multipart boundary)
    assert _models(client) == 1
    other = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k-2"})
    assert other.json()["job_id"] != first.json()["job_id"] and _models(client) == 2


def test_the_same_key_on_another_request_is_refused(client):  # noqa: F811
    files, data = support()
    client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k"})
    relabelled = {"labels": list(reversed(data["labels"]))}
    response = client.post("/v1/adaptations", files=files, data=relabelled, headers={HEADER: "k"})
    assert_error(response, 422, "idempotency_key_reused")
    other_file = [*files[:-1], ("images", ("c2_1.png", files[0][1][1], "image/png"))]
    response = client.post("/v1/adaptations", files=other_file, data=data, headers={HEADER: "k"})
    assert_error(response, 422, "idempotency_key_reused")
    assert _models(client) == 1


def test_a_failed_request_frees_its_key_and_bad_keys_are_refused(client):  # noqa: F811
    files, data = support()
    bad = client.post(
        "/v1/adaptations", files=files, data={**data, "eps": "0.9"}, headers={HEADER: "k"}
    )
    assert_error(bad, 422, "invalid_setting")
    fixed = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k"})
    assert fixed.status_code == 202, fixed.text
    for key in ("has space", "x" * 256, ""):
        response = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: key})
        assert_error(response, 422, "invalid_idempotency_key")
    assert _models(client) == 1


def test_a_repeat_while_the_first_runs_is_told_to_wait(client, settings):  # noqa: F811
    files, data = support()
    client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k"})
    store = redis.Redis.from_url(settings.redis_url)
    (stored,) = list(store.scan_iter(Keys(settings.key_prefix).idempotency("*", "*")))
    record = json.loads(store.get(stored))
    store.set(stored, json.dumps({"state": "in_progress", "fingerprint": record["fingerprint"]}))
    response = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "k"})
    assert_error(response, 409, "idempotency_in_progress")


def test_a_job_once_made_is_never_made_twice_whatever_fails_after(client, monkeypatch):  # noqa: F811
    import redis as redis_module

    from app.routes import adaptations
    from common.queue import JobQueue

    def dispatch_fails(self):
        raise redis_module.ConnectionError("a blip after the job's transaction")

    monkeypatch.setattr(JobQueue, "dispatch", dispatch_fails)
    files, data = support()
    first = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "a"})
    assert first.status_code == 202  # stored: a worker dispatches it later
    monkeypatch.undo()

    def answer_lost(*args, **kwargs):
        raise RuntimeError("the process dies between the commit and the answer")

    monkeypatch.setattr(adaptations, "JSONResponse", answer_lost)
    with pytest.raises(RuntimeError):
        client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "b"})
    monkeypatch.undo()
    again = client.post("/v1/adaptations", files=files, data=data, headers={HEADER: "b"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert _models(client) == 2  # one per key, none twice
