"""Hostile requests that are not images: odd methods and headers, truncated bodies, forged ids.

Each answers a clear 4xx (or its normal answer), stores nothing and grows nothing.
"""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tests.app.test_api import assert_error, support
from tests.service_fixtures import image_bytes, keys_under, live_server

pytestmark = pytest.mark.redis

BOUNDARY = "fuzzboundary7MA4YWxkTrZu0gW"


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def raw_request(url: str, request: bytes) -> bytes:
    """Send bytes as they are to the server at ``url``; its whole answer."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def stored_keys(settings) -> list[bytes]:
    stream = f"{settings.key_prefix}:jobs:stream".encode()
    return [k for k in keys_under(settings.redis_url, settings.key_prefix) if k != stream]


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body of (field, filename or None, content) parts, in order."""
    body = b""
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (
            f'; filename="{filename}"' if filename else ""
        )
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: image/png\r\n\r\n" if filename else b"\r\n"
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def test_a_truncated_multipart_body_is_refused_and_stores_nothing(client, settings):
    parts = [("labels", None, f"class-{c}".encode()) for c in (0, 0, 1, 1)]
    parts += [("images", f"{i}.png", image_bytes(i // 2, i % 2)) for i in range(4)]
    parts.append(("steps", None, b"3"))  # the last part: without it the form is still valid
    body = multipart(parts)
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    cut = body.rindex(f"\r\n--{BOUNDARY}\r\n".encode())  # the last part and the closing line go
    truncated = client.post("/v1/adaptations", content=body[:cut], headers=headers)
    assert_error(truncated, 400, "invalid_multipart")
    assert "truncated" in truncated.json()["error"]["message"]
    assert stored_keys(settings) == []
    whole = client.post("/v1/adaptations", content=body, headers=headers)
    assert whole.status_code == 202, whole.text  # the same body, whole, is a valid upload
    with_epilogue = client.post(
        "/v1/adaptations", content=body + b"an epilogue after the end", headers=headers
    )
    assert with_epilogue.status_code == 202, with_epilogue.text


def test_ids_are_checked_before_they_name_a_redis_key(client, settings):
    files, data = support(classes=2, shots=2)
    created = client.post("/v1/adaptations", files=files, data=data).json()
    job_id, model_id = created["job_id"], created["model_id"]
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200  # the real ids exist
    assert client.get(f"/v1/models/{model_id}").status_code == 200
    before = stored_keys(settings)
    # an earlier version kept the job's input as a string key beside its record (a forged id
    # naming it was once a 503, WRONGTYPE); it is a blob now, and forged ids stay 404
    assert f"{settings.key_prefix}:job:{job_id}".encode() in before
    assert_error(client.get(f"/v1/jobs/{job_id}:input"), 404, "job_not_found")
    assert_error(client.post(f"/v1/jobs/{job_id}:input/cancel"), 404, "job_not_found")
    for forged in (f"{model_id}:weights", f"{model_id}:report", "*", model_id.upper()):
        assert_error(client.get(f"/v1/models/{forged}"), 404, "model_not_found")
        assert_error(client.delete(f"/v1/models/{forged}"), 404, "model_not_found")
        assert_error(client.get(f"/v1/models/{forged}/report"), 404, "model_not_found")
    for offset in ("99999999999999999999", "-1", "1000001"):
        assert_error(client.get(f"/v1/models?offset={offset}"), 422, "invalid_request")
    assert stored_keys(settings) == before


def series(client: TestClient) -> set[tuple]:
    """The metric series /metrics shows: name and labels of each sample."""
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_unknown_methods_and_paths_share_one_metrics_label(client):
    assert client.request("BREW0", "/healthz").status_code == 405
    assert client.request("BREW0", "/no/such/path/0").status_code == 404
    series(client)  # /metrics itself is counted from its first scrape on
    known = series(client)
    assert not any("BREW" in str(labels) for _, labels in known)
    assert any(("method", "other") in labels for _, labels in known)
    for index in range(1, 60):  # each a new method token and a new path
        client.request(f"BREW{index}", "/healthz")
        client.request(f"BREW{index}", f"/no/such/path/{index}")
    assert series(client) == known  # counters moved; no new series


def test_a_non_utf8_request_id_is_replaced(settings):
    """Raw bytes on a real socket (the test client would re-encode the header as UTF-8)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: \xff\xfe\x80abc\r\n"
    with live_server(settings) as url:
        answer = raw_request(url, request + b"Connection: close\r\n\r\n")
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1").lower().splitlines()
    assert head[0].startswith("http/1.1 200"), head
    replaced = next(line.split(": ")[1] for line in head if line.startswith("x-request-id"))
    assert len(replaced) == 32 and all(c in "0123456789abcdef" for c in replaced)


def test_a_tenant_past_its_job_limit_gets_429_and_stores_nothing(settings):
    limited = settings.model_copy(update={"max_jobs_per_tenant": 2})
    files, data = support(classes=2, shots=2)
    with TestClient(create_app(limited)) as client:
        created = [client.post("/v1/adaptations", files=files, data=data) for _ in range(2)]
        assert [answer.status_code for answer in created] == [202, 202]
        before = stored_keys(settings)
        refused = client.post("/v1/adaptations", files=files, data=data)
        assert_error(refused, 429, "too_many_jobs")
        assert refused.headers["Retry-After"] == "30"
        assert stored_keys(settings) == before
        cancel = client.post(f"/v1/jobs/{created[0].json()['job_id']}/cancel")
        assert cancel.json()["state"] == "cancelled"
        assert client.post("/v1/adaptations", files=files, data=data).status_code == 202
