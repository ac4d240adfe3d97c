"""What every ``fewshot`` command shares: consoles, error reporting, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from models.checkpoint import CheckpointError
from models.config import ConfigError
from models.decode import DataError

err = Console(stderr=True)
out_console = Console()


def fail(error: Exception) -> typer.Exit:
    """Print ``error`` as one red line; the exit (status 2) for the caller to raise."""
    err.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the core's domain errors into one red line and exit status 2."""
    try:
        yield
    except (DataError, CheckpointError, ConfigError) as error:
        raise fail(error) from error


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
    )
