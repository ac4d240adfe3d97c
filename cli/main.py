"""``fewshot``: meta-train and evaluate robust few-shot initializations; run the service."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.console import err, fail
from cli.data import app as data_app
from cli.domain import app as domain_app
from cli.evaluate_checkpoint import evaluate_checkpoint_command
from cli.evaluate_poisoning import evaluate_poisoning_command
from cli.keys import app as keys_app
from cli.local_redis import LocalRedisError
from cli.remote import adapt, base_models_app, predict, report
from cli.serve import ServeError, serve
from cli.train import meta_train_command
from common.settings import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
app.command("meta-train")(meta_train_command)
app.command("evaluate")(evaluate_checkpoint_command)
app.command("evaluate-poisoning")(evaluate_poisoning_command)
app.add_typer(keys_app, name="keys")
app.add_typer(domain_app, name="domain")
app.add_typer(data_app, name="data")
app.add_typer(base_models_app, name="base-models")
app.command("adapt")(adapt)
app.command("predict")(predict)
app.command("report")(report)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="API port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 1,
) -> None:
    """Run the service: Redis (REDIS_URL, else an embedded one that keeps its data in
    FEWSHOT_DATA_DIR), the API and workers."""
    echo = lambda text: err.print(text, soft_wrap=True)  # noqa: E731
    try:
        status = serve(host, port, workers, get_settings().data_dir, echo=echo)
    except (ServeError, LocalRedisError) as error:
        raise fail(error) from error
    raise typer.Exit(status)
