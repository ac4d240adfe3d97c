"""Slow clients (slowloris) against the real server: they are cut off, everyone else served."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.service_fixtures import live_server

pytestmark = pytest.mark.redis
HEAD = b"POST /v1/adaptations HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def closed_by_server(connection: socket.socket, trickle: bytes) -> str:
    """Send ``trickle`` a byte at a time, 0.2 s apart, until the server answers or closes;
    what it answered (b'' when it closed without a word)."""
    connection.settimeout(0.2)
    for byte in trickle:
        try:
            connection.sendall(bytes([byte]))
            answer = connection.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return ""
        connection.settimeout(10)
        while answer and not answer.endswith(b"}}"):  # the rest of a JSON error, if any
            more = connection.recv(65536)
            if not more:
                break
            answer += more
        return answer.decode("latin-1")
    raise AssertionError("the server kept the slow connection open")


def test_slow_request_heads_and_bodies_are_cut_off(settings):
    quick = settings.model_copy(update={"header_timeout_s": 1.0, "body_timeout_s": 1.0})
    with live_server(quick) as url:
        idle = [connect(url) for _ in range(20)]  # connected, never a byte: held for ever once
        started = time.monotonic()
        head = closed_by_server(connect(url), HEAD + b"X-Slow: " + b"a" * 200)
        assert head == "" and time.monotonic() - started < 10  # cut at ~1 s, not served
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # others are served
        for connection in idle:
            connection.settimeout(10)
            assert connection.recv(1) == b""  # closed by the server after ~1 s
        body = connect(url)
        body.sendall(HEAD + b"Content-Type: multipart/form-data; boundary=x\r\n")
        body.sendall(b"Content-Length: 100000\r\n\r\n--x\r\n")
        answer = closed_by_server(body, b"z" * 200)  # the body stalls between chunks
        assert answer.startswith("HTTP/1.1 408"), answer
        assert '"request_timeout"' in answer
