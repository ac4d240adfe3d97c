"""Predictions from base64 JSON: the same answers as multipart, the same refusals."""

from __future__ import annotations

import base64

import pytest

from tests.app.test_api import assert_error, client, support, wait_for  # noqa: F401 - fixture
from tests.service_fixtures import image_bytes

pytestmark = pytest.mark.redis


def test_json_predictions_match_multipart_and_bad_bodies_are_refused(client, worker_thread):  # noqa: F811
    files, data = support(classes=3, shots=2)
    created = client.post("/v1/adaptations", files=files, data={**data, "steps": "3"}).json()
    assert wait_for(client, created["job_id"])["state"] == "succeeded"
    url = f"/v1/models/{created['model_id']}/predictions"
    images = [image_bytes(c, 9) for c in (2, 0, 1)]
    as_files = [("images", (f"q{i}.png", data, "image/png")) for i, data in enumerate(images)]
    by_form = client.post(url, files=as_files, data={"top_k": "2"}).json()
    body = {
        "images": [
            {"name": f"q{i}.png", "data": base64.b64encode(data).decode()}
            for i, data in enumerate(images)
        ],
        "top_k": 2,
    }
    by_json = client.post(url, json=body)
    assert by_json.status_code == 200, by_json.text
    assert by_json.json() == by_form  # labels, probabilities, order, domain verdicts
    robust = client.post(url, json={**body, "robustness": True, "eps": 0.05}).json()
    assert all(p["robustness"]["eps"] == 0.05 for p in robust["predictions"])

    # one rule for the flag: true or false (JSON's booleans, the form's words), nothing guessed
    for sent in ("yes", "true", 1, "1", None):
        refused = client.post(url, json={**body, "robustness": sent})
        assert_error(refused, 422, "invalid_setting")
        assert (
            refused.json()["error"]["message"] == f"robustness must be true or false, got {sent!r}"
        )
    for sent in ("yes", "1", "on"):
        refused = client.post(url, files=as_files, data={"robustness": sent})
        assert_error(refused, 422, "invalid_setting")
        assert (
            refused.json()["error"]["message"] == f"robustness must be true or false, got {sent!r}"
        )
    form = {"robustness": "True", "eps": "0.05", "top_k": "2"}
    by_word = client.post(url, files=as_files, data=form).json()
    assert by_word["predictions"] == robust["predictions"]  # the same attack as JSON's true
    assert client.post(url, json={**body, "robustness": False}).json() == by_json.json()

    not_base64 = {"images": [{"name": "x.png", "data": "%%%not base64%%%"}]}
    assert_error(client.post(url, json=not_base64), 422, "invalid_image")
    text = {"images": [{"data": base64.b64encode(b"hello").decode()}]}
    assert_error(client.post(url, json=text), 422, "invalid_image")
    for bad in (
        {"images": []},
        {"images": "abc"},
        {"images": [{"data": "aGk="}], "colour": "red"},
        {"images": [{"data": "aGk="}], "top_k": "many"},
    ):
        assert_error(client.post(url, json=bad), 422, "invalid_request")
    assert_error(client.post(url, json={**body, "eps": 0.9}), 422, "invalid_setting")
    broken = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert_error(broken, 422, "invalid_request")
    wrapped = base64.encodebytes(images[0]).decode()  # line breaks every 76 characters
    as_url = "data:image/png;base64," + base64.b64encode(images[0]).decode()
    for data in (wrapped, as_url):
        answer = client.post(url, json={"images": [{"data": data}], "top_k": 2})
        assert answer.json()["predictions"] == by_form["predictions"][:1], answer.text
    # a million tiny objects: refused before they are parsed (structure, not bytes, costs)
    swarm = b'{"images": [' + b",".join([b'{"data": ""}'] * 200_000) + b"]}"
    refused = client.post(url, content=swarm, headers={"content-type": "Application/JSON"})
    assert_error(refused, 413, "too_many_files")
