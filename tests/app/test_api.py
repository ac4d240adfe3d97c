"""The HTTP API against a real Redis and a real worker thread, with real PNG/JPEG bytes."""

from __future__ import annotations

import io
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from tests.service_fixtures import image_bytes, keys_under

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def support(classes: int = 3, shots: int = 2, fmt: str = "PNG") -> tuple[list, dict]:
    files, labels = [], []
    for cls in range(classes):
        for shot in range(shots):
            files.append(
                ("images", (f"c{cls}_{shot}.png", image_bytes(cls, shot, fmt), "image/png"))
            )
            labels.append(f"class-{cls}")
    return files, {"labels": labels}


def wait_for(
    client: TestClient, job_id: str, timeout: float = 120, headers: dict | None = None
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]


def test_adapt_predict_report_evaluate_delete(client, worker_thread, settings):
    files, data = support(classes=3, shots=2)
    files[1] = ("images", ("c0_1.jpg", image_bytes(0, 1, "JPEG", mode="RGB"), "image/jpeg"))
    created = client.post(
        "/v1/adaptations",
        files=files,
        data={**data, "steps": "5", "name": "shapes v1", "description": "three test classes"},
    )
    assert created.status_code == 202, created.text
    body = created.json()
    assert set(body) == {"job_id", "model_id", "status_url", "warnings"}
    assert body["warnings"] == []  # the test base model has no domain detector
    job = wait_for(client, body["job_id"])
    assert job["state"] == "succeeded", job
    assert job["progress"]["step"] == job["progress"]["total"] > 5
    model = client.get(f"/v1/models/{body['model_id']}").json()
    assert model["state"] == "ready" and model["classes"] == ["class-0", "class-1", "class-2"]
    assert model["settings"]["steps"] == 5
    assert (model["name"], model["description"]) == ("shapes v1", "three test classes")
    assert body["model_id"] in [m["model_id"] for m in client.get("/v1/models").json()["models"]]

    report = client.get(f"/v1/models/{body['model_id']}/report").json()
    assert report["available"] and report["examples"] == 6
    assert report["source"].startswith("2-fold")
    worst = {c["eps"]: c["mean"] for c in report["robust"] if c["attack"] == "worst"}
    fgsm = {c["eps"]: c["mean"] for c in report["robust"] if c["attack"] == "fgsm"}
    assert all(worst[e] <= fgsm[e] for e in fgsm)
    assert set(report["checks"]) == {"robust", "clean_only"}

    query = [("images", ("q.png", image_bytes(c, 9), "image/png")) for c in (2, 0, 1)]
    predicted = client.post(
        f"/v1/models/{body['model_id']}/predictions",
        files=query,
        data={"robustness": "true", "eps": "0.05", "top_k": "2"},
    )
    assert predicted.status_code == 200, predicted.text
    predictions = predicted.json()["predictions"]
    assert len(predictions) == 3 and all(len(p["top"]) == 2 for p in predictions)
    assert all(p["robustness"]["eps"] == 0.05 for p in predictions)
    assert [p["label"] for p in predictions] == ["class-2", "class-0", "class-1"]

    evaluation = client.post(
        f"/v1/models/{body['model_id']}/evaluations",
        files=query,
        data={"labels": ["class-2", "class-0", "class-1"]},
    )
    assert evaluation.status_code == 202, evaluation.text
    result = wait_for(client, evaluation.json()["job_id"])
    assert result["state"] == "succeeded"
    full = client.get(f"/v1/jobs/{result['job_id']}").json()["result"]
    assert full["examples"] == 3 and any(c["attack"] == "pgd-5x2" for c in full["cells"])
    # the operator's suite (FEWSHOT_REPORT_ATTACKS), APGD-T replaced on 3 classes by APGD-DLR
    assert list(full["threat_model"]["attacks"]) == [
        *(a.replace("apgd-t-", "apgd-dlr-") for a in settings.report_attacks.split(",")),
        "worst",
    ]
    skipped = full["attacks_skipped"]["apgd-t-5"]
    assert "needs at least 4 classes" in skipped and "apgd-dlr-5 runs in its place" in skipped

    assert client.delete(f"/v1/models/{body['model_id']}").status_code == 204
    assert_error(client.get(f"/v1/models/{body['model_id']}"), 404, "model_not_found")


def test_one_shot_report_is_unavailable_not_invented(client, worker_thread):
    files, data = support(classes=2, shots=1)
    body = client.post("/v1/adaptations", files=files, data={**data, "steps": "2"}).json()
    assert wait_for(client, body["job_id"])["state"] == "succeeded"
    report = client.get(f"/v1/models/{body['model_id']}/report").json()
    assert report["available"] is False and "validation" in report["reason"]


def test_report_levels_run_what_they_say_and_say_it(client, worker_thread):
    files, data = support(classes=3, shots=2)
    made = {}
    for level in ("quick", "none"):
        body = client.post(
            "/v1/adaptations", files=files, data={**data, "steps": "2", "report": level}
        ).json()
        assert wait_for(client, body["job_id"])["state"] == "succeeded"
        made[level] = client.get(f"/v1/models/{body['model_id']}/report").json()
        record = client.get(f"/v1/models/{body['model_id']}").json()
        assert made[level]["level"] == record["report_summary"]["level"] == level
    quick, none = made["quick"], made["none"]
    assert quick["available"] is True
    assert {cell["attack"] for cell in quick["robust"]} == {"clean", "fgsm", "apgd-ce-20", "worst"}
    assert "quick report" in quick["summary"]["text"]
    assert none["available"] is False and "report=none" in none["reason"]
    bad = client.post("/v1/adaptations", files=files, data={**data, "report": "most"})
    assert_error(bad, 422, "invalid_setting")


def test_cancel_a_queued_job(client, settings):
    files, data = support()
    body = client.post("/v1/adaptations", files=files, data=data).json()
    cancelled = client.post(f"/v1/jobs/{body['job_id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    assert client.get(f"/v1/models/{body['model_id']}").json()["state"] == "cancelled"
    assert_error(client.post(f"/v1/jobs/{body['job_id']}/cancel"), 409, "job_conflict")
    assert_error(
        client.post(f"/v1/models/{body['model_id']}/predictions", files=support()[0][:1]),
        409,
        "model_not_ready",
    )


BAD_UPLOADS = {
    "not_an_image": (
        "invalid_image",
        lambda f, d: ([*f[:-1], ("images", ("x.png", b"hello", "image/png"))], d),
    ),
    "truncated": (
        "invalid_image",
        lambda f, d: ([*f[:-1], ("images", ("t.png", image_bytes(2, 1)[:60], "image/png"))], d),
    ),
    "empty_file": (
        "invalid_image",
        lambda f, d: ([*f[:-1], ("images", ("e.png", b"", "image/png"))], d),
    ),
    "label_without_image": (
        "labels_mismatch",
        lambda f, d: (f, {"labels": [*d["labels"], "class-9"]}),
    ),
    "one_class": ("too_few_classes", lambda f, d: (f, {"labels": ["same"] * len(f)})),
    "too_many_classes": (
        "too_many_classes",
        lambda f, d: (f * 2, {"labels": [f"c{i}" for i in range(2 * len(f))]}),
    ),
    "too_many_shots": ("too_many_shots", lambda f, d: (f * 3, {"labels": d["labels"] * 3})),
    "unknown_base_model": ("unknown_base_model", lambda f, d: (f, {**d, "base_model": "nope"})),
    "bad_eps": ("invalid_setting", lambda f, d: (f, {**d, "eps": "0.9"})),
    "bad_steps": ("invalid_setting", lambda f, d: (f, {**d, "steps": "many"})),
    "bad_adaptation": ("invalid_setting", lambda f, d: (f, {**d, "adaptation": "fast"})),
    "bad_augment": ("invalid_setting", lambda f, d: (f, {**d, "augment": "17"})),
    "long_name": ("invalid_field", lambda f, d: (f, {**d, "name": "n" * 101})),
    "control_in_description": ("invalid_field", lambda f, d: (f, {**d, "description": "a\x00b"})),
    "unknown_val_label": (
        "unknown_label",
        lambda f, d: (
            [*f, ("val_images", ("v.png", image_bytes(0, 5), "image/png"))],
            {**d, "val_labels": ["zzz"]},
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_error_and_store_nothing(client, settings, case):
    code, mutate = BAD_UPLOADS[case]
    files, data = mutate(*support(classes=3, shots=2))
    response = client.post("/v1/adaptations", files=files, data=data)
    assert_error(response, 413 if code == "file_too_large" else 422, code)
    stored = [
        k
        for k in keys_under(settings.redis_url, settings.key_prefix)
        if not k.endswith(b":jobs:stream")
    ]
    assert stored == []
    assert client.get("/v1/models").json()["total"] == 0


def test_size_limits_and_unknown_ids(client, settings):
    files, data = support()
    buffer = io.BytesIO()
    Image.new("L", (2000, 2000)).save(buffer, "PNG")  # 4,000,000 pixels > max_pixels, few bytes
    huge = buffer.getvalue()
    assert len(huge) <= settings.max_file_bytes
    response = client.post(
        "/v1/adaptations", files=[*files[:-1], ("images", ("h.png", huge, "image/png"))], data=data
    )
    assert_error(response, 422, "invalid_image")
    assert "pixels" in response.json()["error"]["message"]
    too_big = [
        *files[:-1],
        ("images", ("b.png", b"\x89PNG" + b"0" * settings.max_file_bytes, "image/png")),
    ]
    assert_error(client.post("/v1/adaptations", files=too_big, data=data), 413, "file_too_large")
    assert_error(client.post("/v1/adaptations", json={"images": []}), 415, "unsupported_media_type")
    assert_error(client.get("/v1/jobs/job_nope"), 404, "job_not_found")
    assert_error(client.get("/v1/models/model_nope"), 404, "model_not_found")
    assert_error(client.get("/v1/models/model_nope/report"), 404, "model_not_found")
    assert_error(
        client.post("/v1/models/model_nope/predictions", files=files[:1]), 404, "model_not_found"
    )
    assert_error(client.delete("/v1/models/model_nope"), 404, "model_not_found")
    assert keys_under(settings.redis_url, settings.key_prefix) in (
        [],
        [f"{settings.key_prefix}:jobs:stream".encode()],
    )


def test_base_models_and_health(client):
    listed = client.get("/v1/base-models").json()
    assert listed["default"] == "tiny-adml"
    assert listed["base_models"][0]["input"] == {
        "channels": 1,
        "size": 28,
        "inverted": True,
        "pixel_range": [0.0, 1.0],
    }
    assert client.get("/healthz").json() == {"status": "ok"}
    assert_error(client.get("/readyz"), 503, "not_ready")  # no worker yet
    unasked = client.get("/readyz", params={"workers": "false"})  # a load balancer's check
    assert unasked.status_code == 200 and unasked.json()["workers"] == 0
    assert "/v1/adaptations" in client.get("/openapi.json").json()["paths"]


def test_too_many_files_is_refused_before_anything_is_stored(settings):
    limited = settings.model_copy(update={"max_files": 4})
    with TestClient(create_app(limited)) as client:
        files, data = support(classes=3, shots=2)
        assert_error(client.post("/v1/adaptations", files=files, data=data), 413, "too_many_files")
        garbage = client.post(
            "/v1/adaptations",
            content=b"--x\r\nnot multipart",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert garbage.status_code in (400, 422), garbage.text
        assert garbage.json()["error"]["code"] in ("invalid_multipart", "no_images")
    assert keys_under(settings.redis_url, settings.key_prefix) in (
        [],
        [f"{settings.key_prefix}:jobs:stream".encode()],
    )


def test_a_bad_report_suite_stops_the_api_at_start(settings):
    from models.core import ConfigError

    bad = settings.model_copy(update={"report_attacks": "fgsm,cw-9"})
    with pytest.raises(ConfigError, match="unknown attack 'cw-9'"), TestClient(create_app(bad)):
        pass
