"""The request-size limit holds for bodies that stream in without (or lying about) a length."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.test_api import assert_error, support
from tests.service_fixtures import keys_under

pytestmark = pytest.mark.redis
LIMIT = 8192


@pytest.fixture
def client(settings):
    small = settings.model_copy(update={"max_request_bytes": LIMIT})
    with TestClient(create_app(small)) as test_client:
        yield test_client


def multipart_body(files, data, boundary: str = "limitboundary") -> bytes:
    body = b""
    for name, value in [("labels", label) for label in data["labels"]]:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, (filename, content, kind) in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


def chunks(body: bytes, size: int = 1024):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_over_the_limit_is_refused_and_stores_nothing(client, settings):
    files, data = support(classes=3, shots=4)
    body = multipart_body(files, data)
    assert len(body) > LIMIT
    response = client.post(
        "/v1/adaptations",
        content=chunks(body),  # a generator: sent chunked, no Content-Length
        headers={"Content-Type": "multipart/form-data; boundary=limitboundary"},
    )
    assert_error(response, 413, "request_too_large")
    assert "8192" in response.json()["error"]["message"]
    assert [k for k in keys_under(settings.redis_url, settings.key_prefix) if b":job:" in k] == []


def test_a_body_under_the_limit_streams_through(client):
    files, data = support(classes=2, shots=1)
    body = multipart_body(files, data)
    assert len(body) < LIMIT
    response = client.post(
        "/v1/adaptations",
        content=chunks(body),
        headers={"Content-Type": "multipart/form-data; boundary=limitboundary"},
    )
    assert response.status_code == 202, response.text
