"""A tenant meta-trains its own base model through the API (real Redis, real worker), adapts
it to new classes of its own kind of images, predicts above chance, and deletes it; hostile
or unusable archives are refused clearly with nothing stored."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.api_keys import ApiKeys
from tests.app.test_api import assert_error, wait_for
from tests.service_fixtures import keys_under
from tests.synthetic import shape_dataset

pytestmark = pytest.mark.redis


def archive_of(dataset: dict[str, list[bytes]], top: str = "shapes") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, files in dataset.items():
            for index, data in enumerate(files):
                archive.writestr(f"{top}/{name}/{index}.png", data)
    return buffer.getvalue()


def stored(redis_url: str, prefix: str) -> list[bytes]:
    """Keys under the prefix but the rate-limit counters every request touches."""
    return [k for k in keys_under(redis_url, prefix) if b":rate:" not in k]


@pytest.fixture
def clients(settings):
    keyed = settings.model_copy(update={"auth": "keys"})
    with TestClient(create_app(keyed)) as client:
        services = client.app.state.services
        api_keys = ApiKeys(services.client, services.keys)
        tokens = {tenant: api_keys.create(tenant)[1] for tenant in ("acme", "globex")}
        yield client, {t: {"Authorization": f"Bearer {v}"} for t, v in tokens.items()}


def create(client, headers, data: bytes, **fields):
    form = {"name": "shapes", "image_size": "16", "iterations": "30", **fields}
    return client.post(
        "/v1/base-models",
        files=[("archive", ("shapes.zip", data, "application/zip"))],
        data=form,
        headers=headers,
    )


def test_bad_archives_and_settings_are_refused_and_store_nothing(clients, redis_url, prefix):
    client, headers = clients
    acme = headers["acme"]
    stored_before = stored(redis_url, prefix)
    good = archive_of(twenty := shape_dataset(20, 5, size=16))
    dataset = dict(list(twenty.items())[:19]) | {"x": list(twenty.values())[19]}
    bad_folder = archive_of({**dataset, "al\u200bpha": dataset["x"]})
    cases = [
        (archive_of(shape_dataset(19, 5, size=16)), {}, 422, "invalid_dataset"),
        (archive_of(shape_dataset(20, 4, size=16)), {}, 422, "invalid_dataset"),
        (b"PK\x03\x04 this is no zip", {}, 422, "invalid_archive"),
        (
            archive_of({**shape_dataset(20, 5, size=16), "x": [b"<html>"] * 5}),
            {},
            422,
            "invalid_image",
        ),
        (bad_folder, {}, 422, "invalid_label"),
        (archive_of({**dataset, "x ": dataset["x"]}), {}, 422, "ambiguous_labels"),
        (good, {"name": "Bad Name!"}, 422, "invalid_name"),
        (good, {"name": "tiny-adml"}, 409, "name_taken"),  # a shipped model's
        (good, {"channels": "2"}, 422, "invalid_setting"),
        (good, {"iterations": "0"}, 422, "invalid_setting"),
    ]
    for data, fields, status, code in cases:
        assert_error(create(client, acme, data, **fields), status, code)
    folder = create(client, acme, bad_folder).json()["error"]["message"]
    assert r"class folder 'al\u200bpha' contains U+200B ZERO WIDTH SPACE" in folder
    not_an_archive = create(client, acme, b"\x1f\x8b not a tar").json()["error"]["message"]
    assert (
        not_an_archive
        == "the file is not a zip or tar archive (tar may be gzip, bzip2 or xz compressed)"
    )
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../../etc/cron.d/x.png", b"x")
    assert_error(create(client, acme, traversal.getvalue()), 422, "invalid_archive")
    assert stored(redis_url, prefix) == stored_before


def test_meta_train_adapt_predict_delete_through_the_api(clients, start_worker, settings):
    client, headers = clients
    acme, globex = headers["acme"], headers["globex"]
    start_worker(settings.model_copy(update={"auth": "keys"}))
    dataset = shape_dataset(24, 8, seed=0, size=16)
    created = create(client, acme, archive_of(dataset))
    assert created.status_code == 202, created.text
    body = created.json()
    assert [len(body["split"][p]) for p in ("train", "val", "test")] == [14, 5, 5]
    assert_error(create(client, acme, archive_of(dataset)), 409, "name_taken")
    job = wait_for(client, body["job_id"], timeout=300, headers=acme)
    assert job["state"] == "succeeded", job

    listed = client.get("/v1/base-models", headers=acme).json()["base_models"]
    own = next(m for m in listed if m["name"] == "shapes")
    assert own["scope"] == "tenant" and own["state"] == "ready"
    assert own["input"]["channels"] == 3 and own["domain"]["detector"] is True
    assert 0 <= own["metrics"]["test_clean"] <= 1
    others = client.get("/v1/base-models", headers=globex).json()["base_models"]
    assert "shapes" not in [m["name"] for m in others]  # tenant-scoped

    # adapt to the five test classes (never trained on), predict their other images
    test_classes = body["split"]["test"]
    files, labels, queries = [], [], []
    for name in test_classes:
        for index, data in enumerate(dataset[name]):
            if index < 3:
                files.append(("images", (f"{name}-{index}.png", data, "image/png")))
                labels.append(name)
            else:
                queries.append((name, data))
    adapted = client.post(
        "/v1/adaptations",
        files=files,
        data={"labels": labels, "base_model": "shapes"},
        headers=acme,
    )
    assert adapted.status_code == 202, adapted.text
    assert wait_for(client, adapted.json()["job_id"], headers=acme)["state"] == "succeeded"
    model_id = adapted.json()["model_id"]
    answers = client.post(
        f"/v1/models/{model_id}/predictions",
        files=[("images", (f"q{i}.png", data, "image/png")) for i, (_, data) in enumerate(queries)],
        headers=acme,
    ).json()["predictions"]
    correct = sum(a["label"] == name for a, (name, _) in zip(answers, queries, strict=True))
    assert correct / len(queries) > 0.4, f"{correct} of {len(queries)}; chance is 20%"
    assert all(a["in_domain"] is not None for a in answers)

    other_tenant = client.post(
        "/v1/adaptations",
        files=files,
        data={"labels": labels, "base_model": "shapes"},
        headers=globex,
    )
    assert_error(other_tenant, 422, "unknown_base_model")
    assert client.delete("/v1/base-models/shapes", headers=globex).status_code == 404
    assert client.delete("/v1/base-models/shapes", headers=acme).status_code == 204
    gone = client.post(
        "/v1/adaptations",
        files=files,
        data={"labels": labels, "base_model": "shapes"},
        headers=acme,
    )
    assert_error(gone, 422, "unknown_base_model")
    assert client.get(f"/v1/models/{model_id}", headers=acme).json()["state"] == "ready"
    # a new base model of the same name (grayscale now) is another one: the old model still
    # predicts, without a domain verdict from the wrong detector
    again = create(client, acme, archive_of(dataset), channels="1", iterations="4")
    assert (
        wait_for(client, again.json()["job_id"], timeout=300, headers=acme)["state"] == "succeeded"
    )
    answers = client.post(
        f"/v1/models/{model_id}/predictions",
        files=[("images", ("q.png", queries[0][1], "image/png"))],
        headers=acme,
    )
    assert answers.status_code == 200, answers.text
    assert answers.json()["predictions"][0]["in_domain"] is None


def test_cancelling_the_training_leaves_a_cancelled_record_that_can_be_deleted(
    clients, start_worker, settings
):
    client, headers = clients
    acme = headers["acme"]
    start_worker(settings.model_copy(update={"auth": "keys"}))
    created = create(client, acme, archive_of(shape_dataset(20, 5, size=16)), iterations="5000")
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job_id}", headers=acme).json()["progress"]["step"] < 2:
        assert time.monotonic() < deadline, "the meta-training never started"
        time.sleep(0.1)
    listed = client.get("/v1/base-models", headers=acme).json()["base_models"]
    training = next(m for m in listed if m["name"] == "shapes")
    assert training["state"] == "training" and training["progress"]["total"] == 5020
    assert training["progress"]["seconds_left"] > 0
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=acme).status_code in (200, 202)
    assert wait_for(client, job_id, headers=acme)["state"] == "cancelled"
    listed = client.get("/v1/base-models", headers=acme).json()["base_models"]
    assert next(m for m in listed if m["name"] == "shapes")["state"] == "cancelled"
    assert client.delete("/v1/base-models/shapes", headers=acme).status_code == 204
