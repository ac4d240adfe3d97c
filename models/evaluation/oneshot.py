"""Omniglot's official one-shot classification runs (Lake et al. 2015), clean and under attack.

Layout: ``runNN/training/classNN.png`` (20 classes, one drawing each), ``runNN/test/itemNN.png``
(20 drawings to classify) and ``runNN/class_labels.txt`` whose lines read
``runNN/test/itemNN.png runNN/training/classNN.png``. Each run is one 20-way one-shot task; the
figure of merit is the error rate, per run and over all runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.attacks import Attack, parse_attacks, runnable
from models.core import AdaptConfig, BackboneConfig, FewShotNet, HeadInit, Params
from models.data import DataError, InputSpec, decode_for
from models.evaluation.episodic import DEFAULT_ATTACKS, DEFAULT_BLACKBOX, attack_correctness
from models.meta import adapt_and_deploy


@dataclass(frozen=True)
class OneShotRun:
    name: str
    x_train: Tensor  # uint8 [classes, C, S, S]: one drawing per class
    x_test: Tensor  # uint8 [items, C, S, S]
    y_test: Tensor  # int64 [items]: index of the training drawing of the same class


def _image(path: Path, spec: InputSpec) -> Tensor:
    if not path.is_file():
        raise DataError(f"missing image {path}")
    return torch.from_numpy(decode_for(spec, path.read_bytes(), source=str(path)))


def load_one_shot_runs(folder: Path | str, spec: InputSpec) -> list[OneShotRun]:
    """Every ``run*/class_labels.txt`` under ``folder``, sorted by run name."""
    folder = Path(folder)
    label_files = sorted(folder.glob("run*/class_labels.txt"))
    if not label_files:
        raise DataError(f"no runNN/class_labels.txt found under {folder}")
    runs = []
    for label_file in label_files:
        pairs = []
        for number, line in enumerate(label_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2:
                raise DataError(f"{label_file}:{number}: expected 'test/item training/class'")
            pairs.append((fields[0], fields[1]))
        if not pairs:
            raise DataError(f"{label_file} lists no test items")
        classes = sorted({train for _, train in pairs})
        index = {name: i for i, name in enumerate(classes)}
        runs.append(
            OneShotRun(
                name=label_file.parent.name,
                x_train=torch.stack([_image(folder / name, spec) for name in classes]),
                x_test=torch.stack([_image(folder / test, spec) for test, _ in pairs]),
                y_test=torch.tensor([index[train] for _, train in pairs]),
            )
        )
    return runs


def evaluate_one_shot_runs(
    config: BackboneConfig,
    backbone: Params,
    runs: Sequence[OneShotRun],
    *,
    adapt_config: AdaptConfig,
    head_init: HeadInit = "proto",
    eps_grid: Sequence[float],
    attacks: Sequence[Attack] | str = DEFAULT_ATTACKS,
    blackbox: Attack | str | None = DEFAULT_BLACKBOX,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Error rates per eps: ``clean_error``; ``fgsm_error`` and ``pgd_error`` (FGSM and the
    first PGD of the suite, the keys of earlier versions); ``worst_error`` (the per-image worst
    case over the white-box suite); every attack's own under ``attack_errors``; the black-box
    check under ``blackbox_error``; and the same per run."""
    grid = sorted({0.0, *eps_grid})
    suite, skipped = runnable(parse_attacks(attacks), len(runs[0].x_train) if runs else 2)
    black = parse_attacks([blackbox])[0] if isinstance(blackbox, str) else blackbox
    wrong: dict[tuple[str, float], int] = {}
    per_run = {}
    total = 0
    generator = torch.Generator().manual_seed(seed)
    for run in runs:
        model = adapt_and_deploy(
            config,
            backbone,
            run.x_train.to(device=device, dtype=torch.float32) / 255,
            torch.arange(len(run.x_train), device=device),
            n_way=len(run.x_train),
            adapt_config=adapt_config,
            head_init=head_init,
        )
        x_test = run.x_test.to(device=device, dtype=torch.float32) / 255
        outcome = attack_run(model, x_test, run.y_test.to(device), grid, suite, black, generator)
        errors = {key: int((~correct).sum()) for key, correct in outcome.items()}
        for key, count in errors.items():
            wrong[key] = wrong.get(key, 0) + count
        total += len(x_test)
        per_run[run.name] = {
            "clean_error": errors[("clean", 0.0)] / len(x_test),
            **{
                f"{attack}_error@{eps:g}": count / len(x_test)
                for (attack, eps), count in errors.items()
                if attack not in ("clean", "white-box") and eps > 0
            },
        }
    result = error_rates(wrong, total, grid, suite, black)
    result.update({"skipped": skipped, "runs": per_run, "items": total})
    return result | {"adapt": adapt_config.__dict__}


def attack_run(
    model: FewShotNet,
    x: Tensor,
    y: Tensor,
    grid: Sequence[float],
    suite: Sequence[Attack],
    black: Attack | None,
    generator: torch.Generator,
) -> dict[tuple[str, float], Tensor]:
    """Per-item correctness of one run's adapted model under the suite and the black-box attack
    (its own cells only: ``worst`` stays over the white-box suite)."""
    outcome = attack_correctness(model, x, y, eps_grid=grid, attacks=suite, generator=generator)
    if black is not None:
        by_black = attack_correctness(
            model, x, y, eps_grid=grid, attacks=[black], generator=generator
        )
        outcome.update({key: value for key, value in by_black.items() if key[0] == black.name})
    return outcome


def error_rates(
    wrong: dict[tuple[str, float], int],
    total: int,
    grid: Sequence[float],
    suite: Sequence[Attack],
    black: Attack | None,
) -> dict[str, Any]:
    """Error rates over all runs' items, per eps, under the keys the result has always had."""

    def rates(attack: str | None) -> dict[str, float]:
        return {f"{eps:g}": wrong[(attack, eps)] / total for eps in grid if (attack, eps) in wrong}

    first_pgd = next((a.name for a in suite if a.kind == "pgd"), None)
    return {
        "clean_error": wrong[("clean", 0.0)] / total,
        "fgsm_error": rates("fgsm"),
        "pgd_error": rates(first_pgd),
        "worst_error": rates("worst"),
        "attack_errors": {attack.name: rates(attack.name) for attack in suite},
        "blackbox_error": rates(None if black is None else black.name),
        "attacks": [attack.name for attack in suite],
        "blackbox": None if black is None else black.name,
    }
