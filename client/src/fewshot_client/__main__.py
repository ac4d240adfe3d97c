"""``fewshot-client`` / ``python -m fewshot_client``: the remote commands of the service.

The commands need the ``[cli]`` extra (typer, rich); without it this says how to get them.
"""

from __future__ import annotations

import sys

MISSING_CLI = (
    "fewshot-client needs typer and rich: pip install 'robust-fewshot-client[cli]' "
    "(or pip install './client[cli]' from the repository)"
)


def main() -> None:
    try:
        from fewshot_client.cli import app
    except ImportError as error:
        if (error.name or "").split(".")[0] not in {"typer", "rich", "click"}:
            raise
        sys.exit(MISSING_CLI)
    app()


if __name__ == "__main__":
    main()
