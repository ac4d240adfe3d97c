"""A minimal HTTP/1.1 load client on asyncio streams: keep-alive connections spread over a pool
of client processes, so the clients take as little of the machine's CPU as they can
(benchmarks/predict_throughput.py)."""

from __future__ import annotations

import asyncio
import statistics
import time

CLIENT_PROCESSES = 4
BOUNDARY = "fewshotbench"


def multipart_request(host: str, port: int, path: str, images: list[bytes]) -> bytes:
    """A whole keep-alive POST of ``images`` as multipart ``images`` files."""
    body = b""
    for n, data in enumerate(images):
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images"; '
                f'filename="q{n}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


async def _connection(host, port, request, start_at, stop_at, latencies, failures) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    try:
        while time.time() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(status)
    finally:
        writer.close()


def client_process(args: tuple) -> tuple[list[float], list[int]]:
    """One load process: ``connections`` keep-alive connections sending ``request`` in a loop
    between ``start_at`` and ``stop_at`` (wall clock); (latencies of 200s, other statuses)."""
    host, port, request, connections, start_at, stop_at = args
    latencies: list[float] = []
    failures: list[int] = []

    async def run() -> None:
        await asyncio.gather(
            *(
                _connection(host, port, request, start_at, stop_at, latencies, failures)
                for _ in range(connections)
            )
        )

    asyncio.run(run())
    return latencies, failures


def measure(pool, host, port, request: bytes, clients: int, seconds: float) -> dict:
    """Requests/s, p50 latency and failures of ``clients`` connections over ``seconds``."""
    shares = [clients // CLIENT_PROCESSES + (n < clients % CLIENT_PROCESSES) for n in range(4)]
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    jobs = [(host, port, request, share, start_at, stop_at) for share in shares if share]
    results = pool.map(client_process, jobs)
    latencies = [value for values, _ in results for value in values]
    failures = [status for _, statuses in results for status in statuses]
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "failures": failures,
    }
