"""``adapt | predict | report``: the service from the command line, on ``FewShotClient``.

The service URL and API key come from --url / --api-key or FEWSHOT_URL / FEWSHOT_API_KEY.
The same functions are ``fewshot-client adapt ...`` and the server's ``fewshot adapt ...``.
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
    plain,
    progress_bar,
)


def adapt(
    folder: Annotated[Path, typer.Argument(help="one subfolder of images per class")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    validation: Annotated[
        Path | None,
        typer.Option(
            help="labelled validation images for the robustness report: one subfolder per "
            "class, named like the support set's (a report on one image per class needs them)"
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="adaptation steps (default 20; see --augment)"),
    ] = None,
    eps: Annotated[float | None, typer.Option(help="FGSM budget of the adaptation")] = None,
    augment: Annotated[
        int | None,
        typer.Option(
            help="random affine copies of each support image per step, 0-16 (default 0; with "
            "one image per class and no adaptation option, the base model's one-shot recipe)"
        ),
    ] = None,
    adaptation: Annotated[
        str, typer.Option(help="robust (clean + FGSM copies) or clean_only")
    ] = "robust",
    report: Annotated[
        str,
        typer.Option(
            help="robustness report: full (strong suite), quick (FGSM + APGD-CE-20) or none"
        ),
    ] = "full",
    base_model: Annotated[str | None, typer.Option(help="initialization to adapt")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the job, with a progress bar")] = True,
    until: Annotated[
        str,
        typer.Option(
            help="with --wait: 'finished' (the report too) or 'model' (the model answers "
            "predictions; its report follows)"
        ),
    ] = "finished",
    allow_out_of_domain: Annotated[
        bool, typer.Option(help="adapt even on images unlike the base model's (with a warning)")
    ] = False,
) -> None:
    """Adapt a base model to a folder of labelled images; print the model id."""
    if until not in ("finished", "model"):
        raise fail(ValueError(f"--until must be 'finished' or 'model', got {until!r}"))
    try:
        with FewShotClient(url, api_key) as api:
            created = api.adapt_folder(
                folder,
                validation,
                steps=steps,
                eps=eps,
                augment=augment,
                adaptation=adaptation,
                report=report,
                base_model=base_model,
                allow_out_of_domain="true" if allow_out_of_domain else None,
            )
            err.print(f"job {created['job_id']} for model {created['model_id']}")
            for warning in created.get("warnings", []):
                err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
            if wait:
                _wait_with_progress(api, created["job_id"], until)
    except ApiError as error:
        _print_details(error)
        raise fail(error) from error
    except (JobFailed, ValueError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    typer.echo(created["model_id"])


def _wait_with_progress(api: FewShotClient, job_id: str, until: str) -> None:
    """Wait for the job (``until`` 'finished' or 'model') behind a progress bar."""
    with progress_bar() as bar:
        task = bar.add_task("adapting", total=None, status="queued")

        def show(job: dict) -> None:
            progress = job["progress"]
            bar.update(
                task,
                completed=progress["step"],
                total=progress["total"] or None,
                status=progress["phase"] if job["state"] == "running" else job["state"],
            )

        api.wait(job_id, on_progress=show, until=until)


def _print_details(error: ApiError) -> None:
    """Each refused input the API named: field, index, file name and reason."""
    for detail in error.details:
        where = f"{detail.get('field')} #{detail.get('index')} ({detail.get('filename')})"
        err.print(f"  {where}: {detail.get('reason')}", soft_wrap=True, highlight=False)


def predict(
    model_id: Annotated[str, typer.Argument(help="an adapted model")],
    images: Annotated[list[Path], typer.Argument(help="images to classify")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    robustness: Annotated[bool, typer.Option(help="also attack each prediction (APGD)")] = False,
    eps: Annotated[float | None, typer.Option(help="attack budget for --robustness")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Classify images with an adapted model."""
    try:
        with FewShotClient(url, api_key) as api:
            predictions = api.predict(model_id, images, robustness=robustness, eps=eps)
    except (ApiError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    if as_json:
        typer.echo(json.dumps(predictions))
        return
    table = Table("image", "label", "probability", "survives attack", "in domain")
    for image, prediction in zip(images, predictions, strict=True):
        survives = prediction.get("robustness", {}).get("label_survives")
        in_domain = prediction.get("in_domain")
        table.add_row(
            image.name,
            plain(prediction["label"]),
            f"{prediction['top'][0]['probability']:.3f}",
            "not checked" if survives is None else yes_no(survives),
            "unknown" if in_domain is None else yes_no(in_domain),
        )
    out_console.print(table)
    for image, prediction in zip(images, predictions, strict=True):
        if prediction.get("domain_warning"):
            out_console.print(f"[yellow]{image.name}[/]: {prediction['domain_warning']}")


def yes_no(value: bool) -> str:
    """A yes/no cell in the console's words; no in red."""
    return "yes" if value else "[red]no[/]"


def report(
    model_id: Annotated[str, typer.Argument(help="an adapted model")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    plot: Annotated[Path | None, typer.Option(help="also save the chart as this PNG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """A model's robustness report as a table (and a PNG chart with --plot)."""
    try:
        with FewShotClient(url, api_key) as api:
            data = api.report(model_id)
            if plot is not None:
                plot.write_bytes(api.report_png(model_id))
    except (ApiError, OSError, httpx.HTTPError) as error:
        raise fail(error) from error
    if as_json:
        typer.echo(json.dumps(data))
        return
    for warning in data.get("warnings", []):
        out_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    print_report(data)


def _interval(cell: dict) -> str:
    if cell.get("low") is None:
        return f"± {100 * cell['ci95']:.1f}"
    return f"{100 * cell['low']:.0f}-{100 * cell['high']:.0f}%"


def _cell(cell: dict) -> str:
    return f"{100 * cell['mean']:.0f}% [dim]{_interval(cell)}[/]"


def attack_matrix(cells: list[dict], title: str) -> Table:
    """A report's cells as the console shows them: one row per attack (no attack once, the
    worst case last, in bold), one column per eps."""
    budgets = sorted({cell["eps"] for cell in cells if cell["eps"] > 0})
    by_place = {(cell["attack"], cell["eps"]): cell for cell in cells}
    table = Table("attack", *(f"eps {eps:g}" for eps in budgets), title=title)
    clean = [cell for cell in cells if cell["eps"] == 0][:1]
    for cell in clean:
        table.add_row("no attack (eps 0)", _cell(cell), *[""] * (len(budgets) - 1))
    attacks = dict.fromkeys(cell["attack"] for cell in cells if cell["eps"] > 0)
    for attack in [a for a in attacks if a != "worst"] + [a for a in attacks if a == "worst"]:
        row = [_cell(by_place[attack, eps]) if (attack, eps) in by_place else "" for eps in budgets]
        table.add_row("[bold]worst case[/]" if attack == "worst" else attack, *row)
    return table


def print_report(data: dict) -> None:
    """The plain sentence, the recommendation, then the details: every attack at every eps
    (a matrix), the sample, the sanity checks."""
    summary = data.get("summary") or {}
    style = "bold red" if summary.get("trustworthy") is False else "bold"
    out_console.print(f"[{style}]{summary.get('text', '')}[/]", highlight=False)
    recommendation = data.get("recommendation")
    if recommendation:
        out_console.print(recommendation["text"], highlight=False)
    if not data.get("available") or summary.get("trustworthy") is False:
        return
    out_console.print(f"\nDetails: {data['examples']} examples; {data['source']}")
    out_console.print("Each cell: the share still correct, then its 95% interval.")
    for variant in ("robust", "clean_only"):
        title = variant.replace("_", "-") + (" (served)" if data.get("served") == variant else "")
        out_console.print(attack_matrix(data[variant], title))
    for name, reason in data.get("attacks_skipped", {}).items():
        out_console.print(f"[yellow]skipped {name}[/]: {reason}", highlight=False)
    for variant, checks in data.get("checks", {}).items():
        for check in checks:
            mark = "[green]PASS[/]" if check["passed"] else "[bold red]FAIL[/]"
            out_console.print(f"sanity {mark} {variant} {check['name']}: {check['detail']}")
