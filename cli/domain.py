"""``fewshot domain fit|check``: each base model's out-of-domain detector (models/domain/)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from cli import runs
from cli.console import clear_errors, out_console
from models.core import (
    Checkpoint,
    ConfigError,
    backbone_params,
    git_commit,
    load_checkpoint,
    model_from_checkpoint,
    utc_now,
)
from models.data import DataError, InputSpec, decode_for
from models.domain import DomainConfig, DomainDetector, fit_domain, load_domain, save_domain

app = typer.Typer(help=__doc__, no_args_is_help=True)

OMNIGLOT_DESCRIPTION = "handwritten characters (Omniglot): dark ink strokes on white paper"


def _pixels(classes) -> torch.Tensor:
    return torch.cat([c.images for c in classes]).float() / 255


def fit_for_checkpoint(
    checkpoint: Checkpoint,
    data: Path | None,
    domain_config: DomainConfig = DomainConfig(),
    description: str | None = None,
) -> DomainDetector:
    """Fit on the card's training classes (without rotated copies); thresholds from its
    validation classes and held-out folds of training alphabets; the test classes stay
    untouched."""
    model, _ = model_from_checkpoint(checkpoint)
    card_data = checkpoint.card["data"]
    classes = runs.card_classes(checkpoint, data, model.config)
    split = runs.split_from_card(checkpoint.card)
    if not split.val:
        raise ConfigError("the checkpoint's split has no validation classes to set thresholds")
    default = OMNIGLOT_DESCRIPTION if card_data["kind"] == "omniglot" else "the training images"
    train = split.select(classes, "train")
    return fit_domain(
        model.config,
        backbone_params(model),
        _pixels(train),
        [c.group for c in train for _ in range(len(c.images))],
        _pixels(split.select(classes, "val")),
        description=description or checkpoint.card.get("domain", {}).get("description", default),
        domain_config=domain_config,
    )


@app.command("fit")
def fit_command(
    checkpoint_path: Annotated[Path, typer.Argument(metavar="CHECKPOINT")],
    description: Annotated[
        str | None, typer.Option(help="what the training images are, in a few words")
    ] = None,
    quantile: Annotated[
        float, typer.Option(help="threshold: this quantile of held-out images' scores")
    ] = DomainConfig.quantile,
    data: Annotated[Path | None, typer.Option(help="default: the path in the card")] = None,
) -> None:
    """Fit the out-of-domain detector of a checkpoint and record it beside it."""
    logging.basicConfig(level=logging.WARNING)
    with clear_errors():
        if not 0.5 <= quantile < 1:
            raise ConfigError("--quantile must lie in [0.5, 1)")
        checkpoint = load_checkpoint(checkpoint_path)
        config = DomainConfig(quantile=quantile)
        detector = fit_for_checkpoint(checkpoint, data, config, description)
        fitted = {
            "reference_images": config.reference_images,
            "quantile": quantile,
            "folds": config.folds,
            "margin": config.margin,
            "command": f"fewshot domain fit {checkpoint_path} --quantile {quantile}",
            "created": utc_now(),
            "git_commit": git_commit(),
        }
        save_domain(checkpoint, detector, fitted)
    out_console.print(
        f"{checkpoint.weights_path.stem}: {detector.description}; thresholds: features "
        f"{detector.feature_threshold:.2f}, pixels {detector.pixel_threshold:.2f}"
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}") from error


@app.command("check")
def check_command(
    checkpoint_path: Annotated[Path, typer.Argument(metavar="CHECKPOINT")],
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE...")],
) -> None:
    """Say for each image whether it looks like the checkpoint's training images."""
    with clear_errors():
        checkpoint = load_checkpoint(checkpoint_path)
        detector = load_domain(checkpoint)
        if detector is None:
            raise ConfigError(f"{checkpoint_path} has no domain detector: run 'fewshot domain fit'")
        model, _ = model_from_checkpoint(checkpoint)
        spec = InputSpec.from_card(checkpoint.card)
        pixels = np.stack([decode_for(spec, _read(path), source=str(path)) for path in images])
        x = torch.from_numpy(pixels).float() / 255
        verdicts = detector.check(model.config, backbone_params(model), x)
    for path, verdict in zip(images, verdicts, strict=True):
        mark = "[green]in domain[/]" if verdict.in_domain else "[bold red]out of domain[/]"
        out_console.print(f"{path}: {mark}" + (f": {verdict.reason}" if verdict.reason else ""))
