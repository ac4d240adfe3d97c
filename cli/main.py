"""``fewshot``: meta-train and evaluate robust few-shot initializations."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli import runs
from cli.serve import ServeError, serve
from models.checkpoint import CheckpointError, load_checkpoint, load_optimizer_state, paths_of
from models.checkpoint import save_checkpoint as write_checkpoint
from models.config import AdaptConfig, ConfigError
from models.data import DataError, InputSpec
from models.episodes import EpisodeSampler
from models.evaluation import DEFAULT_EPS_GRID, EpisodeEvaluation, evaluate_episodes
from models.meta import StepMetrics
from models.networks import FewShotNet, backbone_params
from models.oneshot import evaluate_runs, load_runs
from models.training import (
    TrainState,
    make_optimizer,
    meta_train,
    optimizer_tensors,
    restore_optimizer,
)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
err = Console(stderr=True)
out_console = Console()


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the core's domain errors into one red line and exit status 2."""
    try:
        yield
    except (DataError, CheckpointError, ConfigError) as error:
        err.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from error


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
    )


LOG_EVERY = 20  # iterations between plain log lines when stderr is not a terminal


def _status(metrics: StepMetrics, validation: dict) -> str:
    text = f"loss {metrics.loss:.3f} acc {metrics.clean_accuracy:.3f}"
    if metrics.adversarial_accuracy is not None:
        text += f" adv {metrics.adversarial_accuracy:.3f}"
    details = ", ".join(f"{k} {v}" for k, v in validation.items() if k.startswith("val_"))
    return f"{text} | last validation: {details}" if validation else text


@app.command("meta-train")
def meta_train_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="checkpoint path stem (writes .safetensors, .json)")],
    algo: Annotated[str, typer.Option(help="adml or maml")] = "adml",
    way: int = 5,
    shot: int = 1,
    query: Annotated[int, typer.Option(help="query images per class")] = 5,
    inner_steps: int = 1,
    inner_lr: float = 0.4,
    meta_batch: int = 4,
    meta_lr: float = 1e-3,
    iterations: int = 1000,
    eps: Annotated[float, typer.Option(help="L-inf FGSM budget, pixels in [0, 1]")] = 0.1,
    first_order: Annotated[bool, typer.Option("--first-order/--second-order")] = False,
    head_init: Annotated[str, typer.Option(help="proto or zero")] = "proto",
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto (cuda when present), cpu, cuda")] = "auto",
    data: Annotated[Path | None, typer.Option(help="default: ../shared/data/omniglot")] = None,
    dataset: Annotated[str, typer.Option(help="omniglot or folder (one folder per class)")] = (
        "omniglot"
    ),
    channels: int = 1,
    image_size: int = 28,
    width: int = 64,
    val_groups: Annotated[int, typer.Option(help="alphabets (groups) for validation")] = 1,
    test_groups: Annotated[int, typer.Option(help="alphabets (groups) held out for test")] = 2,
    split_seed: int = 0,
    rotations: Annotated[bool, typer.Option(help="add 90/180/270 rotations as classes")] = True,
    validate_every: int = 100,
    val_episodes: int = 50,
    resume: Annotated[bool, typer.Option(help="continue the run at --out")] = False,
) -> None:
    """Meta-train an ADML (or MAML) initialization on the training alphabets."""
    logging.basicConfig(level=logging.WARNING)
    with clear_errors():
        ranks, torch_device = runs.init_distributed(runs.pick_device(device))
        weights_path, _ = paths_of(out)
        if resume:
            checkpoint = load_checkpoint(out)
            args = {**checkpoint.card["cli_args"], "iterations": iterations}
            err.print(
                f"resuming {weights_path} at iteration {checkpoint.card['iterations']} "
                "with the settings recorded in its card"
            )
        else:
            if weights_path.exists():
                raise ConfigError(f"{weights_path} exists: pass --resume or another --out")
            skip = {"out", "device", "resume"}
            args = {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in ctx.params.items()
                if k not in skip
            }
            data_path = data.resolve() if data else runs.default_data_path()
            args["data"] = str(data_path) if data_path else None
        run = runs.setup_run(args)
        torch.manual_seed(run.seed)
        model = FewShotNet(run.backbone, n_way=run.meta.way)
        state = TrainState()
        if resume:
            if run.split != runs.split_from_card(checkpoint.card):
                raise CheckpointError("the data no longer give the split recorded in the card")
            model, _ = runs.model_from_checkpoint(checkpoint)
            card = checkpoint.card
            state = TrainState(card["iterations"], card["wall_time_s"], card["validation"])
        model.to(torch_device)
        optimizer = make_optimizer(model, run.meta)
        if resume:
            restore_optimizer(optimizer, load_optimizer_state(checkpoint))
        command = runs.command_line(ctx, {"out": str(out), **args})
        meta = run.meta

        def save(current: TrainState) -> None:
            card = runs.training_card(
                run, current, args=args, device=torch_device, ranks=ranks, command=command
            )
            write_checkpoint(out, backbone_params(model), card, optimizer_tensors(optimizer))

        lead = ranks.rank == 0  # only rank 0 validates, saves and reports
        with _progress() if lead else nullcontext() as progress:
            if lead:
                bar = progress.add_task(
                    f"{meta.algo} meta-train",
                    total=iterations,
                    completed=state.iteration,
                    status="",
                )

            def on_step(iteration: int, metrics: StepMetrics) -> None:
                status = _status(metrics, state.validation[-1] if state.validation else {})
                progress.update(bar, completed=iteration, status=status)
                if not err.is_terminal and iteration % LOG_EVERY == 0:
                    err.print(f"iteration {iteration}/{iterations} {status}", soft_wrap=True)

            meta_train(
                model,
                optimizer,
                run.train_sampler,
                meta,
                state,
                iterations=iterations,
                validate_every=args["validate_every"],
                device=torch_device,
                ranks=ranks,
                save=save if lead else None,
                on_step=on_step if lead else None,
                validate=runs.validation_fn(run, args["val_episodes"], torch_device)
                if lead
                else None,
            )
        runs.finish_distributed(ranks)
        if lead:
            err.print(
                f"wrote {weights_path} after {state.iteration} iterations "
                f"({state.wall_time_s:.0f} s); last validation: {state.validation[-1:]}"
            )


def _print_table(result: EpisodeEvaluation, title: str) -> None:
    table = Table(title=title)
    for column in ("attack", "eps", "accuracy", "95% CI", "n"):
        table.add_column(column)
    for cell in result.cells:
        table.add_row(
            cell.attack,
            f"{cell.eps:g}",
            f"{cell.mean:.4f}",
            f"± {cell.ci95:.4f}",
            str(cell.n),
        )
    out_console.print(table)
    for check in result.checks:
        mark = "[green]PASS[/]" if check.passed else "[bold red]FAIL[/]"
        out_console.print(f"sanity {mark} {check.name}: {check.detail}")
    if not all(c.passed for c in result.checks):
        out_console.print(
            "[bold red]WARNING: a sanity check failed; do not trust these figures.[/]"
        )


def _parse_eps(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as error:
        raise ConfigError(f"--eps must be comma-separated numbers, got {text!r}") from error
    if not values or any(not 0 <= v <= 1 for v in values):
        raise ConfigError("--eps values must lie in [0, 1]")
    return values


@app.command()
def evaluate(
    checkpoint_path: Annotated[Path, typer.Argument(metavar="CHECKPOINT")],
    episodes: int = 100,
    way: int = 5,
    shot: int = 1,
    query: int = 15,
    eps: Annotated[str, typer.Option(help="comma-separated L-inf budgets")] = ",".join(
        f"{e:g}" for e in DEFAULT_EPS_GRID
    ),
    pgd_steps: int = 20,
    adversarial: Annotated[
        bool, typer.Option("--adversarial/--clean", help="adaptation: clean+FGSM or clean only")
    ] = True,
    adapt_steps: int = AdaptConfig.steps,
    adapt_lr: float = AdaptConfig.lr,
    adapt_eps: Annotated[float | None, typer.Option(help="default: the card's eps")] = None,
    split: Annotated[str, typer.Option(help="test or val alphabets of the card's split")] = "test",
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs",
            help="evaluate on Omniglot's one-shot "
            "runs (runNN/class_labels.txt) instead of episodes",
        ),
    ] = None,
    seed: int = 0,
    data: Annotated[Path | None, typer.Option(help="default: the path in the card")] = None,
    device: str = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only, on stdout")] = False,
    output: Annotated[Path | None, typer.Option(help="also write the JSON result here")] = None,
) -> None:
    """Adapt a checkpoint on episodes of held-out alphabets (or one-shot runs); accuracy
    under FGSM and PGD."""
    logging.basicConfig(level=logging.WARNING)
    with clear_errors():
        if split not in ("test", "val"):
            raise ConfigError("--split must be 'test' or 'val'")
        eps_grid = _parse_eps(eps)
        torch_device = runs.pick_device(device)
        checkpoint = load_checkpoint(checkpoint_path)
        model, meta = runs.model_from_checkpoint(checkpoint)
        adapt_config = AdaptConfig(
            steps=adapt_steps,
            lr=adapt_lr,
            eps=meta.eps if adapt_eps is None else adapt_eps,
            adversarial=adversarial,
        )
        common = {
            "adapt_config": adapt_config,
            "head_init": meta.head_init,
            "eps_grid": eps_grid,
            "pgd_steps": pgd_steps,
            "seed": seed,
            "device": torch_device,
        }
        if runs_dir is not None:
            one_shot = load_runs(runs_dir, InputSpec.from_card(checkpoint.card))
            result = evaluate_runs(model.config, backbone_params(model), one_shot, **common)
            _emit({"checkpoint": str(checkpoint.weights_path), **result}, output, as_json=True)
            return
        card_data = checkpoint.card["data"]
        classes = runs.load_classes(
            card_data["kind"], data or Path(card_data["path"]), model.config
        )
        held_out = runs.split_from_card(checkpoint.card).select(classes, split)
        sampler = EpisodeSampler(
            held_out, way=way, shot=shot, query=query, seed=seed, split_name=split
        )
        with _progress() as progress:
            bar = progress.add_task("evaluate", total=episodes, status="")
            evaluation = evaluate_episodes(
                model.config,
                backbone_params(model),
                sampler,
                episodes=episodes,
                **common,
                on_episode=lambda done, total: progress.update(bar, completed=done),
            )
    payload = {"checkpoint": str(checkpoint.weights_path), "split": split, **evaluation.to_dict()}
    _emit(payload, output, as_json=as_json)
    if not as_json:
        _print_table(
            evaluation,
            f"{checkpoint.weights_path.name}: {way}-way {shot}-shot, {split} split, "
            f"{'adversarial' if adversarial else 'clean'} adaptation",
        )


def _emit(payload: dict, output: Path | None, *, as_json: bool) -> None:
    text = json.dumps(payload, indent=2)
    if output is not None:
        output.write_text(text + "\n")
    if as_json:
        typer.echo(text)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="API port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 1,
) -> None:
    """Run the service: Redis (REDIS_URL, else an embedded one), the API and workers."""
    try:
        status = serve(host, port, workers, echo=lambda text: err.print(text, soft_wrap=True))
    except ServeError as error:
        err.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from error
    raise typer.Exit(status)
