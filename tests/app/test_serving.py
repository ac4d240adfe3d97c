"""Slow clients (slowloris) against the real server: they are cut off, everyone else served."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.serving import _no_delay
from tests.service_fixtures import eventually, live_server

ROOT = Path(__file__).resolve().parents[2]

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


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="counts processes through /proc (Linux)")
def test_api_processes_serve_one_port_and_stop_together(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "PORT": str(port),
        "FEWSHOT_AUTH": "open",
        "FEWSHOT_KEY_PREFIX": settings.key_prefix,
        "FEWSHOT_BASE_MODELS_DIR": str(settings.base_models_dir),
        "FEWSHOT_API_PROCESSES": "2",
        "FEWSHOT_LOG_LEVEL": "WARNING",
    }
    parent = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            try:
                return httpx.get(f"{url}/readyz?workers=false", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(serving, "the API processes start", timeout=120)
        servers = [  # spawned by uvicorn's supervisor (multiprocessing's resource tracker aside)
            pid
            for pid in children_of(parent.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(servers) == 2
        with httpx.Client(timeout=5) as client:  # keep-alive requests, answered at once
            assert all(client.get(f"{url}/healthz").status_code == 200 for _ in range(20))
    finally:
        parent.terminate()
        assert parent.wait(timeout=60) == 0
    assert children_of(parent.pid) == []


def test_responses_are_sent_without_delay_on_any_tcp_socket():
    listening = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listening.getsockname())
    accepted, _ = listening.accept()
    # as a socket shared with spawned processes comes back: protocol 0, so asyncio skips it
    shared = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=accepted.detach())
    assert shared.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0

    class Transport:
        def get_extra_info(self, name: str):
            return shared if name == "socket" else None

    _no_delay(Transport())
    assert shared.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    for end in (shared, client, listening):
        end.close()
