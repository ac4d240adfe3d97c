"""Out-of-domain support sets against the shipped Omniglot base model: the colour-shapes story
ends in a clear 422 that stores nothing, or in a warning the user asked for."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.settings import PRETRAINED_DIR
from models.data import omniglot_drawings
from tests.app.test_api import assert_error, wait_for
from tests.service_fixtures import keys_under
from tests.synthetic import colour_shape, encode

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    configured = settings.model_copy(update={"base_models_dir": PRETRAINED_DIR})
    with TestClient(create_app(configured)) as test_client:
        yield test_client


def colour_photos(classes=("circle", "square", "triangle"), shots: int = 4) -> tuple[list, dict]:
    """The story of the issue: 3 classes x 4 colour JPEGs."""
    rng = np.random.default_rng(0)
    files, labels = [], []
    for kind in classes:
        for shot in range(shots):
            data = encode(colour_shape(rng, kind, size=96), "JPEG", 90)
            files.append(("images", (f"{kind}-{shot}.jpg", data, "image/jpeg")))
            labels.append(kind)
    return files, {"labels": labels}


def test_base_models_say_what_they_know(client):
    listed = client.get("/v1/base-models").json()["base_models"]
    adml = next(m for m in listed if m["name"] == "adml-omniglot")
    assert adml["domain"]["detector"] is True
    assert "handwritten characters" in adml["domain"]["description"]
    assert (adml["domain"]["channels"], adml["domain"]["image_size"]) == (1, 28)


def test_colour_photos_are_refused_naming_each_image_and_nothing_is_stored(
    client, redis_url, prefix
):
    before = keys_under(redis_url, prefix)
    files, data = colour_photos()
    refused = client.post(
        "/v1/adaptations", files=files, data={**data, "base_model": "adml-omniglot"}
    )
    assert_error(refused, 422, "out_of_domain")
    error = refused.json()["error"]
    assert "12 of 12 images" in error["message"] and "allow_out_of_domain=true" in error["message"]
    assert [(d["field"], d["index"]) for d in error["details"]] == [
        ("images", i) for i in range(1, 13)
    ]
    assert error["details"][0]["filename"] == "circle-0.jpg"
    assert "training images" in error["details"][0]["reason"]
    assert keys_under(redis_url, prefix) == before
    bad_flag = client.post(
        "/v1/adaptations", files=files, data={**data, "allow_out_of_domain": "maybe"}
    )
    assert_error(bad_flag, 422, "invalid_setting")
    assert keys_under(redis_url, prefix) == before


def test_drawings_pass_and_one_foreign_validation_image_is_named_in_its_field(
    client, omniglot_path
):
    drawings = omniglot_drawings(omniglot_path, ["Greek"])
    files, labels = [], []
    for character in sorted(drawings)[:3]:
        for name, data in sorted(drawings[character].items())[:2]:
            files.append(("images", (name, data, "image/png")))
            labels.append(character)
    photo = colour_photos(shots=1)[0][0][1]
    refused = client.post(
        "/v1/adaptations",
        files=[*files, ("val_images", photo)],
        data={"labels": labels, "val_labels": [labels[0]]},
    )
    assert_error(refused, 422, "out_of_domain")
    details = refused.json()["error"]["details"]
    assert [(d["field"], d["index"], d["filename"]) for d in details] == [
        ("val_images", 1, "circle-0.jpg")
    ]
    accepted = client.post("/v1/adaptations", files=files, data={"labels": labels})
    assert accepted.status_code == 202, accepted.text
    assert client.get(f"/v1/models/{accepted.json()['model_id']}").json()["warnings"] == []


def test_allowed_out_of_domain_adaptation_carries_a_warning(client):
    files, data = colour_photos()
    created = client.post(
        "/v1/adaptations", files=files, data={**data, "allow_out_of_domain": "true"}
    )
    assert created.status_code == 202, created.text
    model = client.get(f"/v1/models/{created.json()['model_id']}").json()
    assert created.json()["warnings"] == model["warnings"] and len(model["warnings"]) == 1
    assert "12 of 12 images" in model["warnings"][0] and "may not hold" in model["warnings"][0]


def greek_support(omniglot_path, classes: int = 3, shots: int = 2):
    drawings = omniglot_drawings(omniglot_path, ["Greek"])
    files, labels, spare = [], [], []
    for character in sorted(drawings)[:classes]:
        ordered = sorted(drawings[character].items())
        for name, data in ordered[:shots]:
            files.append(("images", (name, data, "image/png")))
            labels.append(character)
        spare.append((character, ordered[shots]))
    return files, labels, spare


def test_a_foreign_image_among_drawings_is_named_by_its_own_index(client, omniglot_path):
    files, labels, _ = greek_support(omniglot_path)
    photo = colour_photos(shots=1)[0][0][1]
    files[3] = ("images", photo)  # the fourth upload
    refused = client.post("/v1/adaptations", files=files, data={"labels": labels})
    assert_error(refused, 422, "out_of_domain")
    details = refused.json()["error"]["details"]
    assert [(d["field"], d["index"], d["filename"]) for d in details] == [
        ("images", 4, "circle-0.jpg")
    ]
    assert "1 of 6 images" in refused.json()["error"]["message"]


def test_predictions_and_evaluations_see_foreign_images(
    client, omniglot_path, start_worker, settings
):
    start_worker(settings.model_copy(update={"base_models_dir": PRETRAINED_DIR}))
    files, labels, spare = greek_support(omniglot_path)
    created = client.post("/v1/adaptations", files=files, data={"labels": labels, "steps": "3"})
    assert created.status_code == 202, created.text
    assert wait_for(client, created.json()["job_id"], timeout=300)["state"] == "succeeded"
    model_id = created.json()["model_id"]
    photo = colour_photos(shots=1)[0][0][1]
    drawing = ("images", (spare[0][1][0], spare[0][1][1], "image/png"))
    answers = client.post(
        f"/v1/models/{model_id}/predictions", files=[drawing, ("images", photo)]
    ).json()["predictions"]
    assert [a["in_domain"] for a in answers] == [True, False]
    assert "domain_warning" not in answers[0] and "training images" in answers[1]["domain_warning"]
    evaluation = client.post(
        f"/v1/models/{model_id}/evaluations",
        files=[drawing, ("images", photo)],
        data={"labels": [spare[0][0], spare[1][0]]},
    )
    assert_error(evaluation, 422, "out_of_domain")
    allowed = client.post(
        f"/v1/models/{model_id}/evaluations",
        files=[drawing, ("images", photo)],
        data={"labels": [spare[0][0], spare[1][0]], "allow_out_of_domain": "true"},
    )
    assert allowed.status_code == 202 and len(allowed.json()["warnings"]) == 1
