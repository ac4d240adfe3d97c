"""What the remote commands share: consoles, error reporting, progress bars, --url/--api-key."""

from __future__ import annotations

import unicodedata
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

err = Console(stderr=True)
out_console = Console()

Url = Annotated[str, typer.Option(envvar="FEWSHOT_URL", help="the service")]
ApiKey = Annotated[str | None, typer.Option(envvar="FEWSHOT_API_KEY", help="bearer API key")]
DEFAULT_URL = "http://127.0.0.1:8000"


def plain(text: str) -> Text:
    """``text`` from the service (a label, a name) for the terminal: never read as rich markup,
    and every control, format or other invisible character escaped as Python writes it
    (``\\x1b``, ``\\u202e``), so a label stored before the service refused them cannot move
    the cursor, recolour the terminal or reverse the line."""
    return Text("".join(_visible(char) for char in text))


def _visible(char: str) -> str:
    category = unicodedata.category(char)
    return repr(char)[1:-1] if category[0] == "C" or category in ("Zl", "Zp") else char


def fail(error: Exception) -> typer.Exit:
    """Print ``error`` as one red line; the exit (status 2) for the caller to raise."""
    err.print(f"[bold red]error:[/] {explain(error)}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


def explain(error: Exception) -> str:
    """``error`` in words; a service that cannot be reached is named with its URL and how to
    point the command elsewhere."""
    if not isinstance(error, httpx.TransportError):
        return str(error)
    try:
        url = error.request.url
    except RuntimeError:  # an error raised outside a request: no URL to name
        return str(error)
    service = f"{url.scheme}://{url.netloc.decode()}"
    return (
        f"cannot reach the service at {service} ({error.__class__.__name__}: {error} "
        f"on {url.path}); is it running? --url or FEWSHOT_URL sets its address "
        f"(default {DEFAULT_URL})"
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
    )
