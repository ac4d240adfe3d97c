"""Every file of the hostile corpus gets its defined answer; a refused one stores nothing."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from models.data import decode_image
from tests.app.test_api import assert_error, support
from tests.hostile_images import (
    CORPUS,
    encode,
    fuzzed_files,
    huge_dimensions,
    raises_beyond_documented_errors,
    slow_png,
)
from tests.service_fixtures import keys_under, live_server

pytestmark = pytest.mark.redis


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_file_in_a_support_set(client, settings, name):
    make, expected = CORPUS[name]
    files, data = support(classes=2, shots=2)
    files[0] = ("images", (f"{name}.png", make(), "image/png"))
    response = client.post("/v1/adaptations", files=files, data=data)
    jobs = [k for k in keys_under(settings.redis_url, settings.key_prefix) if b":job:" in k]
    if expected is None:
        assert response.status_code == 202, response.text
        assert jobs
    else:
        assert_error(response, *expected)
        assert "#1" in response.json()["error"]["message"]  # names the file
        assert jobs == []


def test_fuzzed_files_never_answer_5xx(client):
    """Mutated real files, some chosen because plain Pillow raises beyond its documented errors
    on them: each gets 202 or a JSON 4xx naming the file, never a 5xx."""
    files = fuzzed_files(seed=1, count=12_000)
    unusual = [d for d in files if raises_beyond_documented_errors(d)]
    assert len(unusual) >= 2  # the precondition: decoder errors that once answered 500
    for data in unusual[:10] + files[:30]:
        upload, fields = support(classes=2, shots=2)
        upload[0] = ("images", ("fuzzed.bin", data, "application/octet-stream"))
        response = client.post("/v1/adaptations", files=upload, data=fields)
        assert response.status_code in (202, 415, 422), response.text
        if response.status_code != 202:
            assert response.json()["error"]["code"] in ("invalid_image", "unsupported_image_format")
            assert "#1" in response.json()["error"]["message"]


def served_defaults(settings):
    """The test settings with the service's default pixel limits (16 Mpx, 64 Mi-pixels)."""
    return settings.model_copy(update={"max_pixels": 4096 * 4096, "max_request_pixels": 2**26})


def test_a_png_bomb_is_told_the_service_limit_as_a_large_image_is(settings):
    """20000 x 20000 pixels in 48 KB: Pillow refuses it before the service's header check;
    the answer is the service's limit all the same, as for a 5000 x 5000 image."""
    bomb, large = huge_dimensions(), encode(Image.new("1", (5000, 5000)), "PNG")
    messages = []
    with TestClient(create_app(served_defaults(settings))) as client:
        for name, data in (("bomb.png", bomb), ("large.png", large)):
            files, fields = support(classes=2, shots=2)
            files[0] = ("images", (name, data, "image/png"))
            response = client.post("/v1/adaptations", files=files, data=fields)
            assert_error(response, 422, "invalid_image")
            messages.append(response.json()["error"]["message"])
    assert (
        messages[1] == f"image #1 (large.png) has 5000x5000 pixels, more than the {4096**2} allowed"
    )
    assert messages[0].startswith("image #1 (bomb.png) has more than ")
    assert messages[0].endswith(f"pixels, more than the {4096**2} allowed")
    assert "bomb" not in messages[0].replace("bomb.png", "")  # not Pillow's "decompression bomb"


def test_too_many_pixels_in_one_request_are_refused_before_decoding(settings):
    heavy = slow_png()  # 16.8 Mpx each: 5 of them exceed the 64 Mi-pixel budget of a request
    started = time.perf_counter()
    decode_image(heavy, channels=1, size=28, source="one")
    one_decode = time.perf_counter() - started  # the baseline, measured in this run
    files = [("images", (f"big{i}.png", heavy, "image/png")) for i in range(5)]
    data = {"labels": ["a", "a", "b", "b", "b"]}
    started = time.perf_counter()
    with TestClient(create_app(served_defaults(settings))) as client:
        response = client.post("/v1/adaptations", files=files, data=data)
    assert_error(response, 413, "too_many_pixels")
    assert "5 images" in response.json()["error"]["message"]
    assert time.perf_counter() - started < one_decode  # refused from the headers: none decoded
    assert [k for k in keys_under(settings.redis_url, settings.key_prefix) if b":job:" in k] == []


def test_heavy_decoding_never_stalls_the_event_loop(settings):
    """Four slow decodes in one upload: /healthz keeps answering meanwhile."""
    files, data = support(classes=2, shots=2)
    files = [("images", (f"big{i}.png", slow_png(), "image/png")) for i in range(4)]
    answers: dict[str, httpx.Response] = {}
    with (
        live_server(served_defaults(settings)) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):

        def upload() -> None:
            with httpx.Client(base_url=url, timeout=60) as uploader:
                answers["upload"] = uploader.post("/v1/adaptations", files=files, data=data)

        thread = threading.Thread(target=upload)
        started = time.perf_counter()
        thread.start()
        latencies = []
        while thread.is_alive():
            asked = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - asked)
        upload_seconds = time.perf_counter() - started
        thread.join()
    assert answers["upload"].status_code == 202, answers["upload"].text
    assert len(latencies) >= 10  # probed all along the upload
    assert max(latencies) < min(1.0, upload_seconds / 4), (max(latencies), upload_seconds)
