"""``fewshot meta-train``: meta-train an ADML or MAML initialization (torchrun-ready)."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import torch
import typer

from cli import runs
from cli.console import clear_errors, err, progress_bar
from models.core import (
    CheckpointError,
    ConfigError,
    FewShotNet,
    backbone_params,
    load_checkpoint,
    load_optimizer_state,
    paths_of,
    pick_device,
)
from models.core import save_checkpoint as write_checkpoint
from models.meta import (
    StepMetrics,
    TrainState,
    make_optimizer,
    meta_train,
    optimizer_tensors,
    restore_optimizer,
)

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
        elif init is not None:
            source = load_checkpoint(init)
            model = runs.warm_start(model, source, run)
            args["init_lineage"] = runs.lineage(source)  # the card says what it grew from
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
        with progress_bar() if lead else nullcontext() as progress:
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
    runs.exit_rank(ranks)
