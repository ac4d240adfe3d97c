"""``fewshot data``: where the local service (``fewshot serve``, ``make run``) keeps its data,
and how to wipe it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from cli.console import err, fail
from cli.local_redis import LocalRedis, LocalRedisError
from common.settings import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.command("where")
def where() -> None:
    """Print the data folder (FEWSHOT_DATA_DIR): the embedded Redis's files and the artifacts."""
    typer.echo(str(get_settings().data_dir))


@app.command("wipe")
def wipe(
    yes: Annotated[
        bool, typer.Option("--yes", help="really delete every job, model and key")
    ] = False,
) -> None:
    """Delete everything the local service remembers: jobs, models, reports, API keys. Refused
    while `fewshot serve` runs on the folder."""
    data_dir = get_settings().data_dir
    if not yes:
        raise fail(f"this deletes every job, model and key in {data_dir}: add --yes to do it")
    local = LocalRedis(data_dir)
    try:
        with local.held("fewshot data wipe"):
            for path in _contents(data_dir, local):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    except (LocalRedisError, OSError) as error:
        raise fail(error) from error
    err.print(f"wiped {data_dir}")


def _contents(data_dir: Path, local: LocalRedis) -> list[Path]:
    """What wipe deletes: the embedded Redis's files (its lock stays: wipe holds it) and the
    artifacts; nothing else that may lie in the folder."""
    redis_files = [p for p in local.folder.iterdir() if p.name != "lock"]
    return redis_files + [p for p in [data_dir / "artifacts"] if p.exists()]
