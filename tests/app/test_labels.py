"""Labels are data, through the real API with real PNG bytes: stored as a person meant them
(NFC, trimmed), refused with the label and the character named when no person could have meant
them, and two spellings of one label refused, never merged (support, validation, evaluation)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, wait_for
from tests.service_fixtures import image_bytes, keys_under

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def labelled(labels: list[str], field: str = "images", first: int = 0) -> list[tuple]:
    """One real PNG per label, the same class pattern for the same label as sent."""
    patterns = {label: number for number, label in enumerate(dict.fromkeys(labels))}
    return [
        (field, (f"{first + i}.png", image_bytes(patterns[label], first + i), "image/png"))
        for i, label in enumerate(labels)
    ]


def adapt(client, labels: list[str], val_labels: list[str] | None = None, **fields):
    files = labelled(labels)
    data: dict = {"labels": labels, **fields}
    if val_labels:
        files += labelled(val_labels, "val_images", first=len(labels))
        data["val_labels"] = val_labels
    return client.post("/v1/adaptations", files=files, data=data)


def nothing_stored(settings) -> bool:
    keys = keys_under(settings.redis_url, settings.key_prefix)
    return [k for k in keys if not k.endswith(b":jobs:stream")] == []


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        (["alpha", "al\u200bpha"], r"'al\u200bpha' contains U+200B ZERO WIDTH SPACE"),
        (["\u202eevil\u202c", "good"], r"'\u202eevil\u202c' contains U+202E RIGHT-TO-LEFT"),
        (["nul\x00", "beta"], r"'nul\x00' contains U+0000"),
        (["new\nline", "beta"], r"'new\nline' contains U+000A"),
        (["\x1b[31mred", "beta"], r"'\x1b[31mred' contains U+001B"),
        (["alpha", "   "], "'   ' is empty"),
    ],
)
def test_invisible_characters_are_refused_naming_label_and_character(
    client, settings, labels, named
):
    response = adapt(client, labels * 2)
    assert_error(response, 422, "invalid_label")
    assert named in response.json()["error"]["message"]
    assert nothing_stored(settings)


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        (["alpha", " alpha ", "beta"], "'alpha' and ' alpha '"),  # once silently two classes
        (["alpha", "alpha "], "'alpha' and 'alpha '"),  # once "too_few_classes: 1 class(es)"
        (["\u00e9", "e\u0301"], "'\u00e9' (U+00E9) and 'e\u0301' (U+0065 U+0301)"),
    ],
)
def test_two_spellings_of_one_label_are_refused_naming_both(client, settings, labels, named):
    response = adapt(client, labels * 2)
    assert_error(response, 422, "ambiguous_labels")
    assert named in response.json()["error"]["message"]
    assert nothing_stored(settings)


def test_validation_labels_follow_the_same_rule(client, settings):
    support = ["alpha", "beta", "alpha", "beta"]
    response = adapt(client, support, val_labels=["alpha ", "beta"])
    assert_error(response, 422, "ambiguous_labels")  # one request, two spellings of alpha
    assert "'alpha' and 'alpha '" in response.json()["error"]["message"]
    response = adapt(client, support, val_labels=["al\u200bpha", "beta"])
    assert_error(response, 422, "invalid_label")
    assert nothing_stored(settings)


def test_accents_scripts_and_inner_spaces_stay_and_one_spelling_is_stored(client):
    sent = ["cafe\u0301", " 가", "beta gamma ", "cafe\u0301", " 가", "beta gamma "]
    created = adapt(client, sent)
    assert created.status_code == 202, created.text
    model = client.get(f"/v1/models/{created.json()['model_id']}").json()
    assert model["classes"] == ["beta gamma", "café", "가"]
    assert "\u00e9" in model["classes"][1]  # composed (NFC)


def test_messages_count_in_words(client):
    response = adapt(client, ["same"] * 4)
    assert_error(response, 422, "too_few_classes")
    message = response.json()["error"]["message"]
    assert message.startswith("1 class ('same');") and "(es)" not in message
    files = labelled(["a", "b", "a"])
    response = client.post("/v1/adaptations", files=files, data={"labels": ["a"]})
    assert_error(response, 422, "labels_mismatch")
    assert response.json()["error"]["message"].startswith("3 files in 'images' but 1 label:")
    response = adapt(client, ["a", "b"], val_labels=["zzz"])
    assert_error(response, 422, "unknown_label")
    assert response.json()["error"]["message"].startswith("label 'zzz' is not among the support")


def test_evaluation_labels_follow_the_same_rule(client, worker_thread):
    created = adapt(client, ["café", "가"] * 2, steps="2", report="none")
    assert created.status_code == 202, created.text
    assert wait_for(client, created.json()["job_id"])["state"] == "succeeded"
    url = f"/v1/models/{created.json()['model_id']}/evaluations"

    def evaluate(labels: list[str]):
        return client.post(url, files=labelled(labels), data={"labels": labels})

    assert_error(evaluate(["caf\u200b\u00e9", "가"]), 422, "invalid_label")
    refused = evaluate(["café", "cafe\u0301", "가"])
    assert_error(refused, 422, "ambiguous_labels")
    assert "U+0066 U+0065 U+0301)" in refused.json()["error"]["message"]
    accepted = evaluate(["cafe\u0301 ", "가", "cafe\u0301 "])  # one spelling: the class café
    assert accepted.status_code == 202, accepted.text
