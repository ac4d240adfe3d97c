"""``fewshot-client``: adapt, predict and report on a robust-fewshot service; base models of
your own. The service URL and API key come from --url / --api-key or FEWSHOT_URL /
FEWSHOT_API_KEY.

Needs the ``[cli]`` extra (typer, rich). The server's ``fewshot`` command registers these same
commands (``register``), so there is one implementation.
"""

from __future__ import annotations

import typer

from fewshot_client.cli.base_models import app as base_models_app
from fewshot_client.cli.remote import adapt, predict, print_report, report


def register(app: typer.Typer) -> None:
    """Add the remote commands to ``app``: adapt, predict, report, base-models."""
    app.command("adapt")(adapt)
    app.command("predict")(predict)
    app.command("report")(report)
    app.add_typer(base_models_app, name="base-models")


HELP = "Adapt, predict and report on a robust-fewshot service; base models of your own."
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
register(app)

__all__ = ["adapt", "app", "base_models_app", "predict", "print_report", "register", "report"]
