"""What the episode evaluations (``fewshot evaluate``, ``fewshot evaluate-poisoning``) share:
their common options as ``Annotated`` aliases, the eps list they parse, how they report
progress and write their result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.console import err
from models.core import ConfigError

Adversarial = Annotated[
    bool, typer.Option("--adversarial/--clean", help="adaptation: clean+FGSM or clean only")
]
AdaptEps = Annotated[float | None, typer.Option(help="default: the card's eps")]
AdaptAugment = Annotated[
    int, typer.Option(help="random affine copies of each support image per step")
]
Split = Annotated[str, typer.Option(help="test or val alphabets of the card's split")]
DataPath = Annotated[Path | None, typer.Option(help="default: the path in the card")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON only, on stdout")]
Output = Annotated[Path | None, typer.Option(help="also write the JSON result here")]
Journal = Annotated[
    Path | None,
    typer.Option(help="record each finished episode here; run again to resume from it"),
]
LOG_EVERY = 50  # episodes between plain progress lines when stderr is not a terminal


def parse_eps(text: str) -> tuple[float, ...]:
    """``--eps``: comma-separated budgets in [0, 1] (ConfigError otherwise)."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as error:
        raise ConfigError(f"--eps must be comma-separated numbers, got {text!r}") from error
    if not values or any(not 0 <= v <= 1 for v in values):
        raise ConfigError("--eps values must lie in [0, 1]")
    return values


def advance(progress, bar, done: int, total: int) -> None:
    """Move the progress bar; a plain line every LOG_EVERY episodes when not on a terminal."""
    progress.update(bar, completed=done)
    if not err.is_terminal and (done % LOG_EVERY == 0 or done == total):
        err.print(f"episode {done}/{total}", soft_wrap=True)


def emit(payload: dict, output: Path | None, *, as_json: bool) -> None:
    """Write the result to ``output`` and, with ``as_json``, print it."""
    text = json.dumps(payload, indent=2)
    if output is not None:
        output.write_text(text + "\n")
    if as_json:
        typer.echo(text)
