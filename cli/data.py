"""``fewshot data``: where the local service (``fewshot serve``, ``make run``) keeps its data,
how to wipe it, and how to move what an earlier version kept in Redis into the artifact
store."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import redis
import typer

from cli.console import err, fail
from cli.local_redis import LocalRedis, LocalRedisError, command_stores
from common.artifact_health import require_usable
from common.artifacts import ArtifactsUnavailable
from common.model_migration import MigrationCounts, Progress, migrate_to_artifacts
from common.settings import get_settings

PROBE_TIMEOUT_S = 10.0  # the artifact store's probe before anything moves
PROGRESS_EVERY_S = 5.0  # a long migration says how far it is at most this often

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


@app.command("migrate")
def migrate(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would move; change nothing")
    ] = False,
) -> None:
    """Move adapted models' weights and finished reports, and tenants' base models, that an
    earlier version kept in Redis into the artifact store (FEWSHOT_ARTIFACTS_URL), model by
    model, each in a transaction;
    safe while the service runs, and again (a second run moves nothing). Prints the counts
    as JSON; exits 1 when the store refused any (they stay in Redis: run it again)."""
    echo = lambda text: err.print(text, soft_wrap=True, highlight=False)  # noqa: E731
    try:
        with command_stores(echo) as stores:
            artifacts = stores.models.artifacts
            echo(f"artifact store: {artifacts.url}")
            if not dry_run:
                require_usable(artifacts, PROBE_TIMEOUT_S)
            counts = migrate_to_artifacts(
                stores.models,
                stores.tenant_bases,
                dry_run=dry_run,
                progress=_progress_printer(echo),
            )
    except (redis.RedisError, LocalRedisError, ArtifactsUnavailable, ValueError) as error:
        raise fail(f"{error} (stopped: what moved stays moved; run it again)") from error
    typer.echo(json.dumps({"dry_run": dry_run, **asdict(counts)}))
    echo(_summary(counts, dry_run))
    if counts.failed or counts.stopped:
        raise typer.Exit(1)


def _progress_printer(echo: Callable[[str], None]) -> Progress:
    """Counts so far, at most every PROGRESS_EVERY_S."""
    last = time.monotonic()

    def progress(counts: MigrationCounts) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            echo(f"so far: {_summary(counts, dry_run=False)}")

    return progress


def _summary(counts: MigrationCounts, dry_run: bool) -> str:
    verb = "would move" if dry_run else "moved"
    text = (
        f"{verb} {counts.weights} model weights, {counts.reports} finished reports and "
        f"{counts.base_models} base models; "
        f"{counts.skipped} left in Redis on purpose (reports not finished, records gone or "
        f"moved already); {counts.failed} refused by the store"
    )
    if counts.stopped:
        text += "; stopped early: the store refused every blob of the last ones"
    return text
