"""``python -m app.probe``: exit 0 when this machine's API answers /readyz with 200, else 1.

The API container's health check (the slim image has no curl).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from common.settings import get_settings

TIMEOUT_S = 5


def ready(port: int) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_S) as reply:
            return reply.status == 200, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return False, error.read().decode(errors="replace")
    except OSError as error:
        return False, str(error)


if __name__ == "__main__":
    is_ready, answer = ready(get_settings().port)
    sys.stderr.write(answer + "\n")
    sys.exit(0 if is_ready else 1)
