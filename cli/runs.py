"""What the CLI commands assemble from the ML core: data, samplers, cards, validation."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import typer

from models.core import (
    AdaptConfig,
    BackboneConfig,
    Checkpoint,
    CheckpointError,
    ConfigError,
    FewShotNet,
    MetaConfig,
    Params,
    backbone_params,
    configs_from_card,
    git_commit,
    hardware,
    model_from_checkpoint,
    utc_now,
)
from models.data import (
    ClassImages,
    DataError,
    EpisodeSampler,
    GroupSplit,
    load_image_folder,
    load_omniglot,
    split_by_group,
    with_rotations,
)
from models.evaluation import evaluate_episodes
from models.meta import Ranks, TrainState, episodes_for

DatasetKind = Literal["omniglot", "folder"]
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO_ROOT.parent / "shared" / "data" / "omniglot"


def default_data_path() -> Path | None:
    """``../shared/data/omniglot`` beside the checkout (or the working directory), if present."""
    for candidate in (Path("../shared/data/omniglot"), SHARED_OMNIGLOT):
        if candidate.exists():
            return candidate.resolve()
    return None


def init_distributed(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the ``torchrun`` process group when there is one (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size()), device


def finish_distributed(ranks: Ranks) -> None:
    if ranks.world > 1:
        dist.barrier()
        dist.destroy_process_group()


def exit_rank(ranks: Ranks) -> None:
    """End a torchrun rank once all is written, skipping the interpreter's teardown.

    gloo's threads abort some teardowns after ``destroy_process_group`` ("terminate called
    without an active exception", SIGABRT; seen in 1 of about 20 runs on a loaded 2-core
    machine, torch 2.13.0), which torchrun then reports as a failed run."""
    if ranks.world > 1:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def load_classes(
    kind: DatasetKind, path: Path | None, backbone: BackboneConfig
) -> list[ClassImages]:
    if path is None:
        raise DataError("no data path given and ../shared/data/omniglot does not exist")
    if kind == "omniglot":
        if backbone.in_channels != 1:
            raise ConfigError("Omniglot is grayscale: use --channels 1")
        return load_omniglot(path, image_size=backbone.image_size)
    return load_image_folder(path, channels=backbone.in_channels, image_size=backbone.image_size)


def card_classes(
    checkpoint: Checkpoint, data: Path | None, backbone: BackboneConfig
) -> list[ClassImages]:
    """The classes of the data a checkpoint's card names (read from ``data`` when given)."""
    card_data = checkpoint.card["data"]
    return load_classes(card_data["kind"], data or Path(card_data["path"]), backbone)


@dataclass(frozen=True)
class RunSetup:
    """Everything a meta-training run derives from its CLI arguments."""

    backbone: BackboneConfig
    meta: MetaConfig
    split: GroupSplit
    data: dict[str, Any]  # what the card records about the data
    train_sampler: EpisodeSampler
    val_sampler: EpisodeSampler
    seed: int


def setup_run(args: dict[str, Any]) -> RunSetup:
    """Configs, data, split and samplers from ``meta-train``'s arguments (or a card's)."""
    if args["dataset"] not in ("omniglot", "folder"):
        raise ConfigError("dataset must be 'omniglot' or 'folder'")
    backbone = BackboneConfig(
        in_channels=args["channels"], image_size=args["image_size"], width=args["width"]
    )
    defaults = MetaConfig()  # cards written before an option existed lack its key
    meta = MetaConfig(
        **{f.name: args.get(f.name, getattr(defaults, f.name)) for f in fields(MetaConfig)}
    )
    path = Path(args["data"]) if args["data"] else None
    classes = load_classes(args["dataset"], path, backbone)
    split = split_by_group(
        classes, n_val=args["val_groups"], n_test=args["test_groups"], seed=args["split_seed"]
    )
    train = split.select(classes, "train")
    if args["rotations"]:
        train = with_rotations(train)
    seed = args["seed"]
    return RunSetup(
        backbone=backbone,
        meta=meta,
        split=split,
        data={
            "kind": args["dataset"],
            "path": str(path),
            "classes": len(classes),
            "train_classes_with_rotations": len(train),
            "rotations": args["rotations"],
            "split": split.to_dict(),
        },
        train_sampler=episodes_for(train, meta, seed=seed, split_name="train"),
        val_sampler=episodes_for(
            split.select(classes, "val"), meta, seed=seed + 1, split_name="validation"
        ),
        seed=seed,
    )


def command_line(ctx: typer.Context, args: dict[str, Any]) -> str:
    """The full command (every option, defaults included) that reproduces the run."""
    words = ["fewshot", ctx.info_name or "meta-train"]
    for param in ctx.command.params:
        if param.name not in args or args[param.name] is None:
            continue
        value = args[param.name]
        if isinstance(value, bool):
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [param.opts[0], shlex.quote(str(value))]
    return " ".join(words)


def split_from_card(card: dict[str, Any]) -> GroupSplit:
    split = card["data"]["split"]
    return GroupSplit(
        tuple(split["train"]), tuple(split["val"]), tuple(split["test"]), split["seed"]
    )


def training_card(
    run: RunSetup,
    state: TrainState,
    *,
    args: dict[str, Any],
    device: torch.device,
    command: str,
    ranks: Ranks,
) -> dict[str, Any]:
    return {
        "kind": "meta-trained",
        "algo": run.meta.algo,
        "backbone": asdict(run.backbone),
        "meta": asdict(run.meta),
        "data": run.data,
        "seed": run.seed,
        "iterations_planned": args["iterations"],
        "iterations": state.iteration,
        "wall_time_s": round(state.wall_time_s, 2),
        "device": str(device),
        "world_size": ranks.world,
        "hardware": hardware(),
        "git_commit": git_commit(),
        "created": utc_now(),
        "command": command,
        "cli_args": args,
        "validation": state.validation,
        "metrics": state.validation[-1] if state.validation else {},
    }


def warm_start_weights(checkpoint: Checkpoint, run: RunSetup) -> Params:
    """The backbone weights of ``checkpoint``, which must share the run's backbone and split
    (a warm start from another split would leak its test alphabets into training)."""
    backbone, _ = configs_from_card(checkpoint.card)
    if backbone != run.backbone:
        raise CheckpointError(f"--init backbone {backbone} differs from this run's {run.backbone}")
    if split_from_card(checkpoint.card) != run.split:
        raise CheckpointError("--init was trained on another split: its test data could leak")
    source, _ = model_from_checkpoint(checkpoint)
    return backbone_params(source)


def lineage(checkpoint: Checkpoint) -> dict[str, Any]:
    """What a warm-started run records about its starting point: budget, command, weights."""
    card = checkpoint.card
    return {
        key: card.get(key)
        for key in ("algo", "iterations", "wall_time_s", "command", "git_commit", "weights")
    } | {"meta": card.get("meta"), "init_lineage": card.get("cli_args", {}).get("init_lineage")}


def validation_fn(run: RunSetup, episodes: int, device: torch.device):
    """Validation during training: service-style adaptation, clean and PGD-10 at the train eps."""
    backbone, meta = run.backbone, run.meta
    adapt_config = AdaptConfig(eps=meta.eps if meta.eps > 0 else 0.1)

    def validate(model: FewShotNet) -> dict[str, Any]:
        result = evaluate_episodes(
            backbone,
            backbone_params(model),
            run.val_sampler,
            episodes=episodes,
            adapt_config=adapt_config,
            head_init=meta.head_init,
            eps_grid=(adapt_config.eps,),
            attacks="fgsm,pgd-10",
            blackbox=None,
            sanity=False,
            device=device,
        )
        clean = result.cell("clean", 0.0)
        robust = result.cell("pgd-10", adapt_config.eps)
        single_step = result.cell("fgsm", adapt_config.eps)  # PGD falling as this rises: CO
        return {
            "val_clean": round(clean.mean, 4),
            "val_clean_ci95": round(clean.ci95, 4),
            f"val_pgd10@{adapt_config.eps:g}": round(robust.mean, 4),
            f"val_fgsm@{adapt_config.eps:g}": round(single_step.mean, 4),
            "val_episodes": episodes,
        }

    return validate
