"""``fewshot meta-train``: meta-train an ADML or MAML initialization (torchrun-ready)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import runs
from cli.console import clear_errors, err, progress_bar
from models.core import (
    Checkpoint,
    CheckpointError,
    ConfigError,
    backbone_params,
    load_checkpoint,
    load_optimizer_state,
    model_from_checkpoint,
    paths_of,
    pick_device,
)
from models.core import save_checkpoint as write_checkpoint
from models.meta import MetaTrainRun, Ranks, SaveCallback, StepMetrics, TrainState

LOG_EVERY = 20  # iterations between plain log lines when stderr is not a terminal


def _status(metrics: StepMetrics, validation: dict) -> str:
    text = f"loss {metrics.loss:.3f} acc {metrics.clean_accuracy:.3f}"
    if metrics.adversarial_accuracy is not None:
        text += f" adv {metrics.adversarial_accuracy:.3f}"
    details = ", ".join(f"{k} {v}" for k, v in validation.items() if k.startswith("val_"))
    return f"{text} | last validation: {details}" if validation else text


def meta_train_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="checkpoint path stem (writes .safetensors, .json)")],
    algo: Annotated[str, typer.Option(help="adml, maml or aq (adversarial querying)")] = "adml",
    way: int = 5,
    shot: int = 1,
    query: Annotated[int, typer.Option(help="query images per class")] = 5,
    inner_steps: int = 1,
    inner_lr: float = 0.4,
    meta_batch: int = 4,
    meta_lr: float = 1e-3,
    iterations: int = 1000,
    eps: Annotated[float, typer.Option(help="L-inf FGSM budget, pixels in [0, 1]")] = 0.1,
    attack: Annotated[str, typer.Option(help="fgsm, fgsm-rs (random start) or pgd")] = "fgsm",
    attack_steps: Annotated[int, typer.Option(help="steps of --attack pgd")] = 3,
    eps_ramp: Annotated[int, typer.Option(help="meta-steps of a linear eps ramp from 0")] = 0,
    trades: Annotated[float, typer.Option(help="TRADES KL weight (0: ADML's CE)")] = 0.0,
    init: Annotated[
        Path | None, typer.Option(help="start from this checkpoint's weights (warm start)")
    ] = None,
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
        ranks, torch_device = runs.init_distributed(pick_device(device))
        checkpoint = _checkpoint_to_resume(out) if resume else None
        args = _run_args(ctx, out, data, checkpoint, iterations)
        run = runs.setup_run(args)
        training = MetaTrainRun(
            run.backbone, run.meta, run.train_sampler, seed=run.seed, device=torch_device
        )
        if checkpoint is not None:
            _resume(training, checkpoint, run)
        elif init is not None:
            source = load_checkpoint(init)
            training.load_backbone(runs.warm_start_weights(source, run))
            args["init_lineage"] = runs.lineage(source)  # the card says what it grew from
        command = runs.command_line(ctx, {"out": str(out), **args})
        save = _checkpoint_writer(out, training, run, args, ranks=ranks, command=command)
        _train(training, run, args, iterations=iterations, ranks=ranks, save=save)
        runs.finish_distributed(ranks)
        if ranks.rank == 0:
            state = training.state
            err.print(
                f"wrote {paths_of(out)[0]} after {state.iteration} iterations "
                f"({state.wall_time_s:.0f} s); last validation: {state.validation[-1:]}"
            )
    runs.exit_rank(ranks)


def _checkpoint_to_resume(out: Path) -> Checkpoint:
    checkpoint = load_checkpoint(out)
    err.print(
        f"resuming {checkpoint.weights_path} at iteration {checkpoint.card['iterations']} "
        "with the settings recorded in its card"
    )
    return checkpoint


def _run_args(
    ctx: typer.Context,
    out: Path,
    data: Path | None,
    checkpoint: Checkpoint | None,
    iterations: int,
) -> dict[str, Any]:
    """The run's settings: the resumed card's (with the new ``iterations``) or the options'."""
    if checkpoint is not None:
        return {**checkpoint.card["cli_args"], "iterations": iterations}
    weights_path, _ = paths_of(out)
    if weights_path.exists():
        raise ConfigError(f"{weights_path} exists: pass --resume or another --out")
    skip = {"out", "device", "resume"}
    args = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in ctx.params.items() if k not in skip
    }
    data_path = data.resolve() if data else runs.default_data_path()
    args["data"] = str(data_path) if data_path else None
    return args


def _resume(training: MetaTrainRun, checkpoint: Checkpoint, run: runs.RunSetup) -> None:
    if run.split != runs.split_from_card(checkpoint.card):
        raise CheckpointError("the data no longer give the split recorded in the card")
    model, _ = model_from_checkpoint(checkpoint)
    card = checkpoint.card
    training.restore(
        backbone_params(model),
        load_optimizer_state(checkpoint),
        TrainState(card["iterations"], card["wall_time_s"], card["validation"]),
    )


def _checkpoint_writer(
    out: Path,
    training: MetaTrainRun,
    run: runs.RunSetup,
    args: dict[str, Any],
    *,
    ranks: Ranks,
    command: str,
) -> SaveCallback:
    def save(current: TrainState) -> None:
        card = runs.training_card(
            run, current, args=args, device=training.device, ranks=ranks, command=command
        )
        write_checkpoint(out, training.backbone_params(), card, training.optimizer_tensors())

    return save


def _train(
    training: MetaTrainRun,
    run: runs.RunSetup,
    args: dict[str, Any],
    *,
    iterations: int,
    ranks: Ranks,
    save: SaveCallback,
) -> None:
    """Train to ``iterations``; only rank 0 validates, saves and reports."""
    if ranks.rank != 0:
        training.train(iterations, validate_every=args["validate_every"], ranks=ranks)
        return
    state = training.state
    with progress_bar() as progress:
        bar = progress.add_task(
            f"{run.meta.algo} meta-train", total=iterations, completed=state.iteration, status=""
        )

        def on_step(iteration: int, metrics: StepMetrics) -> None:
            status = _status(metrics, state.validation[-1] if state.validation else {})
            progress.update(bar, completed=iteration, status=status)
            if not err.is_terminal and iteration % LOG_EVERY == 0:
                err.print(f"iteration {iteration}/{iterations} {status}", soft_wrap=True)

        training.train(
            iterations,
            validate_every=args["validate_every"],
            ranks=ranks,
            save=save,
            on_step=on_step,
            validate=runs.validation_fn(run, args["val_episodes"], training.device),
        )
