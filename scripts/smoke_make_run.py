"""Prove the embedded default: ``make run`` with no REDIS_URL serves a real adaptation.

Starts ``make run`` in its own process group on a free port, waits for /readyz, uploads a small
support set of real PNG drawings, waits for the adaptation job, predicts one image, then presses
Ctrl-C (SIGINT to the group, as a terminal does) and checks that no process it started is left.
Exit status 0 on success; 1 with the reason otherwise. Run by .ci/run after ``make test``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 300
JOB_TIMEOUT_S = 600  # the report alone may take its 120 s attack budget twice over on a busy CPU
STOP_TIMEOUT_S = 60
CLASSES, SHOTS = 3, 2


class SmokeFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png(cls: int, index: int) -> bytes:
    """A real PNG drawing, as the shipped Omniglot base model expects (its out-of-domain check
    refuses anything else): the class's three pen strokes on white paper, jittered per image."""
    strokes = np.random.default_rng(cls).uniform(20, 85, (3, 3, 2))
    jitter = np.random.default_rng(100 * cls + index).normal(0, 2.5, strokes.shape)
    image = Image.new("L", (105, 105), 255)
    draw = ImageDraw.Draw(image)
    for stroke in strokes + jitter:
        draw.line([tuple(point) for point in stroke], fill=0, width=5, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n')
        parts.append(f"{value}\r\n")
    body = "".join(parts).encode()
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        )
        body += head.encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def call(url: str, body: bytes | None = None, content_type: str | None = None) -> dict:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as error:
        raise SmokeFailure(f"{url}: HTTP {error.code}: {error.read().decode()}") from error


def wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeFailure(f"make run exited with status {server.returncode} before ready")
        try:
            call(f"{base}/readyz")
            return
        except (SmokeFailure, OSError):
            time.sleep(0.5)
    raise SmokeFailure(f"/readyz did not answer 200 within {READY_TIMEOUT_S} s")


def adapt_and_predict(base: str) -> str:
    files, fields = [], [("steps", "5")]
    for cls in range(CLASSES):
        for shot in range(SHOTS):
            files.append(("images", f"c{cls}_{shot}.png", png(cls, shot)))
            fields.append(("labels", f"class-{cls}"))
    created = call(f"{base}/v1/adaptations", *multipart(fields, files))
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job = {}
    while time.monotonic() < deadline:
        job = call(f"{base}{created['status_url']}")
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    if job.get("state") != "succeeded":
        raise SmokeFailure(f"adaptation job did not succeed: {job}")
    predicted = call(
        f"{base}/v1/models/{created['model_id']}/predictions",
        *multipart([], [("images", "query.png", png(1, 99))]),
    )
    label = predicted["predictions"][0]["label"]
    if label not in {f"class-{cls}" for cls in range(CLASSES)}:
        raise SmokeFailure(f"prediction answered an unknown label: {predicted}")
    return label


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment holds the marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def stop(server: subprocess.Popen, marker: str) -> None:
    os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole group
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise SmokeFailure(f"make run did not stop within {STOP_TIMEOUT_S} s of Ctrl-C") from error
    deadline = time.monotonic() + 5
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        raise SmokeFailure(f"processes left behind after Ctrl-C: {left}")


def main() -> int:
    port = free_port()
    marker = f"FEWSHOT_SMOKE_{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"PORT": str(port), marker: "1", "FEWSHOT_LOG_FORMAT": "text"})
    data_dir = tempfile.TemporaryDirectory(prefix="fewshot-smoke-")  # not the user's data
    env["FEWSHOT_DATA_DIR"] = data_dir.name
    started = time.monotonic()
    server = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        ready_s = time.monotonic() - started
        label = adapt_and_predict(base)
        served_s = time.monotonic() - started
        stop(server, marker)
    except SmokeFailure as failure:
        print(f"smoke: FAILED: {failure}", file=sys.stderr)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        return 1
    finally:
        data_dir.cleanup()
    print(
        f"smoke: make run (embedded Redis) ready in {ready_s:.1f} s; adaptation + prediction "
        f"('{label}') done at {served_s:.1f} s; stopped by Ctrl-C with no process left",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
