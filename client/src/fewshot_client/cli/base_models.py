"""``base-models create | list | delete``: base models of your own, on the service.

``create`` zips a folder (one subfolder of images per class), uploads it, and follows the
meta-training job; the service URL and key come as for ``adapt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from fewshot_client.api import ApiError, FewShotClient, JobFailed
from fewshot_client.cli.console import (
    DEFAULT_URL,
    ApiKey,
    Url,
    err,
    fail,
    out_console,
    progress_bar,
)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.command("create")
def create(
    folder: Annotated[Path, typer.Argument(help="one subfolder of images per class (20+)")],
    name: Annotated[str, typer.Option(help="its name: a-z, 0-9 and '-'")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    description: Annotated[str | None, typer.Option(help="what the images are")] = None,
    channels: Annotated[int | None, typer.Option(help="1 (grayscale) or 3 (RGB, default)")] = None,
    image_size: Annotated[int | None, typer.Option(help="side in pixels (default 32)")] = None,
    eps: Annotated[float | None, typer.Option(help="FGSM budget (default 8/255)")] = None,
    iterations: Annotated[int | None, typer.Option(help="meta-steps (default 1000)")] = None,
    wait: Annotated[bool, typer.Option(help="follow the training, with a progress bar")] = True,
) -> None:
    """Meta-train a base model of your own on a folder of labelled images."""
    try:
        with FewShotClient(url, api_key) as api:
            created = api.create_base_model(
                folder,
                name,
                description=description,
                channels=channels,
                image_size=image_size,
                eps=eps,
                iterations=iterations,
            )
            split = created["split"]
            err.print(
                f"job {created['job_id']}: {len(split['train'])} classes to train on, "
                f"{len(split['val'])} to validate, {len(split['test'])} to test"
            )
            if wait:
                with progress_bar() as bar:
                    task = bar.add_task("meta-training", total=None, status="queued")

                    def show(job: dict) -> None:
                        progress = job["progress"]
                        total = progress["total"] or None
                        bar.update(
                            task, completed=progress["step"], total=total, status=job["state"]
                        )

                    api.wait(created["job_id"], on_progress=show, timeout_s=24 * 3600)
    except (ApiError, JobFailed, ValueError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    typer.echo(name)


@app.command("list")
def list_command(
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """The shipped base models and yours, with what each knows."""
    try:
        with FewShotClient(url, api_key) as api:
            listed = api.base_models()
    except (ApiError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    if as_json:
        typer.echo(json.dumps(listed))
        return
    table = Table("name", "scope", "state", "knows", "input", "test clean / worst")
    for model in listed["base_models"]:
        metrics = model.get("metrics") or {}
        worst = next((v for k, v in metrics.items() if k.startswith("test_worst@")), None)
        figures = "" if worst is None else f"{metrics['test_clean']:.0%} / {worst:.0%}"
        size = model.get("input", {}).get("size")
        table.add_row(
            model["name"],
            model.get("scope", "shipped"),
            model.get("state", "ready"),
            model.get("domain", {}).get("description", ""),
            "" if size is None else f"{size}px x{model['input']['channels']}",
            figures,
        )
    out_console.print(table)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="one of your base models")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Delete one of your base models (its training stops); adapted models keep working."""
    try:
        with FewShotClient(url, api_key) as api:
            api.delete_base_model(name)
    except (ApiError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    err.print(f"deleted base model {name}")
