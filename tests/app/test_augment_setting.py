"""The `augment` job setting through the HTTP API: its bounds, its default, what is stored."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from common.keys import Keys
from models import service_jobs
from tests.app.test_api import assert_error, support

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_augmented_adaptation_is_bounded_by_the_images_it_computes_per_step(settings):
    limited = settings.model_copy(update={"max_files": 20})
    with TestClient(create_app(limited)) as client:
        files, data = support(classes=3, shots=2)  # 6 images: 4 x 6 = 24 per step > 20
        refused = client.post("/v1/adaptations", files=files, data={**data, "augment": "3"})
        assert_error(refused, 422, "invalid_setting")
        assert "24 images per step" in refused.json()["error"]["message"]
        assert client.get("/v1/models").json()["total"] == 0
        assert client.get("/v1/limits").json()["augment"] == {
            "min": 0,
            "max": 16,
            "images_per_step": 20,
        }
        accepted = client.post("/v1/adaptations", files=files, data={**data, "augment": "2"})
        assert accepted.status_code == 202, accepted.text
        job = client.get(accepted.json()["status_url"]).json()
        assert job["state"] == "queued"
    record = redis.Redis.from_url(settings.redis_url).hgetall(
        Keys(settings.key_prefix).job(accepted.json()["job_id"])
    )
    stored = service_jobs.AdaptJob.from_json(record[b"settings"].decode())
    assert stored.adapt_config.augment == 2  # what the worker adapts with
    old = stored.to_json().replace(', "augment": 2', "")  # a job queued before the option
    assert service_jobs.AdaptJob.from_json(old).augment == 0


def test_one_shot_support_sets_get_the_one_shot_augment_unless_they_ask(
    client, settings, monkeypatch
):
    monkeypatch.setattr(service_jobs, "ONE_SHOT_AUGMENT", 3)
    stored = redis.Redis.from_url(settings.redis_url)

    def augment_of(shots: int, **asked: str) -> int:
        files, data = support(classes=3, shots=shots)
        created = client.post("/v1/adaptations", files=files, data={**data, **asked})
        assert created.status_code == 202, created.text
        record = stored.hgetall(Keys(settings.key_prefix).job(created.json()["job_id"]))
        return service_jobs.AdaptJob.from_json(record[b"settings"].decode()).augment

    assert augment_of(1) == 3  # the measured default, at 1 shot per class
    assert augment_of(2) == 0  # not measured at more shots: none
    assert augment_of(1, augment="0") == 0 and augment_of(2, augment="5") == 5  # as asked
