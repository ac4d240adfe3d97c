"""A real S3-protocol server for tests: moto's standalone server in its own process on a free
port (``moto[server]``, a dev dependency). Skips the calling test with the reason when it cannot
start."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from tests.service_fixtures import free_port

START_TIMEOUT_S = 30.0


@dataclass
class S3Server:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to use this server as its S3 (fake, test-only credentials)."""
        return {
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3_server() -> S3Server:
    try:
        import moto.server  # noqa: F401
    except ImportError as error:
        pytest.skip(f"no S3 test server: moto[server] is not installed ({error})")
    port = free_port()
    command = [sys.executable, "-c", "from moto.server import main; main()"]
    # its log to a file, not a pipe: the log of every request would fill a pipe nobody reads,
    # and the server would stop answering (a benchmark's thousands of requests)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=log
        )
        server = S3Server(process, port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                error = log.read().decode(errors="replace")
                pytest.skip(f"the S3 test server did not start: {error[-500:]}")
            try:
                with urllib.request.urlopen(f"{server.endpoint}/", timeout=1):
                    return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
    server.stop()
    pytest.skip(f"the S3 test server did not answer within {START_TIMEOUT_S:.0f} s")
