"""The `augment` job setting through the HTTP API: its bounds, its default, what is stored."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from common.keys import Keys
from models import service_jobs
from tests.app.test_api import assert_error, support
from tests.service_fixtures import image_bytes

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


def test_one_shot_support_sets_get_the_measured_one_shot_adaptation_unless_they_ask(
    client, settings
):
    stored = redis.Redis.from_url(settings.redis_url)

    def adaptation_of(shots: list[int], **asked: str) -> tuple[int, int]:
        files, labels = [], []
        for cls, count in enumerate(shots):
            for shot in range(count):
                files.append(
                    ("images", (f"c{cls}_{shot}.png", image_bytes(cls, shot), "image/png"))
                )
                labels.append(f"class-{cls}")
        created = client.post("/v1/adaptations", files=files, data={"labels": labels, **asked})
        assert created.status_code == 202, created.text
        record = stored.hgetall(Keys(settings.key_prefix).job(created.json()["job_id"]))
        job = service_jobs.AdaptJob.from_json(record[b"settings"].decode())
        return job.augment, job.steps

    one_shot = (service_jobs.ONE_SHOT_AUGMENT, service_jobs.ONE_SHOT_STEPS)
    assert one_shot == (16, 40)  # ADAPTATION-3.md: aug16-steps40
    assert adaptation_of([1, 1, 1]) == one_shot  # every class one image: measured there
    assert adaptation_of([2, 2, 2]) == (0, 20)  # not measured at more shots: the plain defaults
    assert adaptation_of([1, 2, 1]) == (0, 20)  # nor on mixed support sets
    assert adaptation_of([1, 1, 1], augment="0") == (0, 40)  # each setting as asked
    assert adaptation_of([1, 1, 1], steps="5") == (16, 5)
    assert adaptation_of([2, 2, 2], augment="5") == (5, 20)


def test_the_one_shot_default_stays_within_the_bounds_it_is_given():
    defaults = service_jobs.default_augment_and_steps
    assert defaults([1] * 5, 1000, 200) == (16, 40)
    assert defaults([1] * 50, 1000, 200) == (16, 40)  # 17 x 50 = 850 images per step
    assert defaults([1] * 5, 40, 30) == (7, 30)  # 8 x 5 = 40 images; steps up to 30
    assert defaults([1] * 50, 60, 200) == (0, 40)  # no copy fits: none, never a refusal
    assert defaults([], 1000, 200) == (0, 20)  # no labels: the form check refuses it later
