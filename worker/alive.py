"""``python -m worker.alive``: exit 0 when this machine's worker beat recently, else 1.

The container health check of the worker: the worker touches its alive file on every heartbeat
(from a thread, so a long job does not make it look dead); a stale or missing file means the
process is gone or stuck.
"""

from __future__ import annotations

import sys
import time

from common.settings import Settings, get_settings


def is_alive(settings: Settings, now: float | None = None) -> bool:
    try:
        beat = settings.worker_alive_file.stat().st_mtime
    except FileNotFoundError:
        return False
    moment = time.time() if now is None else now
    return moment - beat <= settings.worker_live_s


if __name__ == "__main__":
    alive = is_alive(get_settings())
    sys.stderr.write("worker alive\n" if alive else "worker not alive\n")
    sys.exit(0 if alive else 1)
