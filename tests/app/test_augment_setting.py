"""The `augment` job setting through the HTTP API: its bounds, its default, what is stored."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from common.keys import Keys
from common.settings import PRETRAINED_DIR
from models.core import CheckpointError
from models.service import jobs as service_jobs
from models.service import load_base_models
from tests.app.test_api import assert_error, support
from tests.service_fixtures import image_bytes, save_tiny_base_model

pytestmark = pytest.mark.redis


RECIPE = {"augment": 16, "steps": 40}  # ADAPTATION-3.md's aug16-steps40, as the ADML card has it


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def recipe_settings(settings, tmp_path):
    """Two small base models: an ADML one whose card holds a one-shot recipe, a MAML one
    without (none measured)."""
    folder = tmp_path / "bases"
    folder.mkdir()
    save_tiny_base_model(folder / "tiny-adml", service_adaptation={"one_image_per_class": RECIPE})
    save_tiny_base_model(folder / "tiny-maml", algo="maml")
    return settings.model_copy(update={"base_models_dir": folder})


def test_the_shipped_adml_card_holds_the_measured_recipe_and_maml_none():
    shipped = load_base_models(PRETRAINED_DIR)
    assert shipped.get("adml-omniglot").one_shot_adaptation == (16, 40)
    assert shipped.get("maml-omniglot").one_shot_adaptation is None


@pytest.mark.parametrize(
    "recipe",
    [
        {},
        {"augment": 17, "steps": 40},
        {"augment": 16, "steps": 0},
        {"augment": True, "steps": 4},
        {"augment": "16", "steps": 40},
        {"augment": 2.5, "steps": 40},
        [16, 40],
    ],
)
def test_a_recipe_the_api_could_not_run_stops_loading(tmp_path, recipe):
    save_tiny_base_model(tmp_path / "bad", service_adaptation={"one_image_per_class": recipe})
    with pytest.raises(CheckpointError):
        load_base_models(tmp_path)


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


def stored_adaptation(client, settings, shots: list[int], **asked: str) -> tuple[int, int]:
    """(augment, steps) the stored job adapts with, for classes of ``shots`` images each."""
    files, labels = [], []
    for cls, count in enumerate(shots):
        for shot in range(count):
            files.append(("images", (f"c{cls}_{shot}.png", image_bytes(cls, shot), "image/png")))
            labels.append(f"class-{cls}")
    created = client.post("/v1/adaptations", files=files, data={"labels": labels, **asked})
    assert created.status_code == 202, created.text
    record = redis.Redis.from_url(settings.redis_url).hgetall(
        Keys(settings.key_prefix).job(created.json()["job_id"])
    )
    job = service_jobs.AdaptJob.from_json(record[b"settings"].decode())
    return job.augment, job.steps


def test_one_shot_support_sets_get_their_base_models_measured_recipe_unless_they_ask(
    recipe_settings,
):
    with TestClient(create_app(recipe_settings)) as client:
        bases = {b["name"]: b for b in client.get("/v1/base-models").json()["base_models"]}
        assert bases["tiny-adml"]["one_shot_adaptation"] == RECIPE
        assert bases["tiny-maml"]["one_shot_adaptation"] is None

        def adaptation_of(shots: list[int], **asked: str) -> tuple[int, int]:
            return stored_adaptation(client, recipe_settings, shots, **asked)

        assert adaptation_of([1, 1, 1]) == (16, 40)  # every class one image: measured there
        assert adaptation_of([2, 2, 2]) == (0, 20)  # more shots: not measured, plain defaults
        assert adaptation_of([1, 2, 1]) == (0, 20)  # nor on mixed support sets
        assert adaptation_of([1, 1, 1], adaptation="clean_only") == (0, 20)  # nor clean-only
        assert adaptation_of([1, 1, 1], base_model="tiny-maml") == (0, 20)  # nor without one
        # asking for any setting is asking for the plain adaptation: no unmeasured mix
        assert adaptation_of([1, 1, 1], augment="0") == (0, 20)
        assert adaptation_of([1, 1, 1], steps="5") == (0, 5)
        assert adaptation_of([1, 1, 1], eps="0.05") == (0, 20)
        assert adaptation_of([1, 1, 1], lr="0.05") == (0, 20)
        assert adaptation_of([2, 2, 2], augment="5") == (5, 20)


def test_the_one_shot_recipe_stays_within_the_limits_and_never_hides_a_mismatch(
    recipe_settings,
):
    limited = recipe_settings.model_copy(update={"max_files": 51, "max_adapt_steps": 40})
    with TestClient(create_app(limited)) as client:
        assert stored_adaptation(client, limited, [1, 1, 1]) == (16, 40)  # 17 x 3 = 51: fits
        assert stored_adaptation(client, limited, [1, 1, 1, 1]) == (0, 20)  # 68: plain, whole
        files, data = support(classes=3, shots=1)
        files.append(("images", ("extra.png", image_bytes(0, 9), "image/png")))  # no label
        refused = client.post("/v1/adaptations", files=files, data=data)
        assert_error(refused, 422, "labels_mismatch")  # not a setting the client never sent


def test_the_recipe_runs_whole_or_not_at_all():
    defaults = service_jobs.default_augment_and_steps
    recipe = (16, 40)
    assert defaults([1] * 5, recipe, 1000, 200) == (16, 40)
    assert defaults([1] * 50, recipe, 1000, 200) == (16, 40)  # 17 x 50 = 850 images per step
    assert defaults([1] * 50, recipe, 849, 200) == (0, 20)  # one image too many: plain
    assert defaults([1] * 5, recipe, 1000, 39) == (0, 20)  # too many steps: plain
    assert defaults([1] * 5, None, 1000, 200) == (0, 20)  # no recipe measured: plain
    assert defaults([2] * 5, recipe, 1000, 10) == (0, 10)  # plain steps held within bounds
    assert defaults([], recipe, 1000, 200) == (0, 20)  # no labels: the form check refuses it
