"""``fewshot evaluate``: accuracy under attack on held-out episodes or one-shot runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import runs
from cli.console import clear_errors, out_console, progress_bar
from cli.episode_options import (
    AdaptAugment,
    AdaptEps,
    Adversarial,
    AsJson,
    DataPath,
    Journal,
    Output,
    Split,
    advance,
    emit,
    parse_eps,
)
from models.attacks import Attack, parse_attacks
from models.core import (
    DEFAULT_EPS_GRID,
    AdaptConfig,
    ConfigError,
    FewShotNet,
    backbone_params,
    load_checkpoint,
    model_from_checkpoint,
    pick_device,
)
from models.data import EpisodeSampler, InputSpec
from models.evaluation import (
    DEFAULT_ATTACKS,
    DEFAULT_BLACKBOX,
    EpisodeEvaluation,
    evaluate_episodes,
    evaluate_one_shot_runs,
    load_one_shot_runs,
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
    out_console.print(
        f"worst = per-image worst case over {', '.join(result.attacks)}; black-box check: "
        f"{result.blackbox or 'none'} on {result.blackbox_episodes} episodes"
    )
    for name, reason in result.skipped.items():
        out_console.print(f"[yellow]skipped {name}[/]: {reason}")
    for check in result.checks:
        mark = "[green]PASS[/]" if check.passed else "[bold red]FAIL[/]"
        out_console.print(f"sanity {mark} {check.name}: {check.detail}")
    if not all(c.passed for c in result.checks):
        out_console.print(
            "[bold red]WARNING: a sanity check failed; do not trust these figures.[/]"
        )


def evaluate_checkpoint_command(
    checkpoint_path: Annotated[Path, typer.Argument(metavar="CHECKPOINT")],
    episodes: int = 100,
    way: int = 5,
    shot: int = 1,
    query: int = 15,
    eps: Annotated[str, typer.Option(help="comma-separated L-inf budgets")] = ",".join(
        f"{e:g}" for e in DEFAULT_EPS_GRID
    ),
    attacks: Annotated[
        str, typer.Option(help="comma-separated attack suite (see docs/robustness.md)")
    ] = ",".join(DEFAULT_ATTACKS),
    blackbox: Annotated[
        str, typer.Option(help="black-box attack of the gradient-masking check, or 'none'")
    ] = DEFAULT_BLACKBOX,
    blackbox_every: Annotated[
        int, typer.Option(help="run the black-box attack on every N-th episode")
    ] = 10,
    adversarial: Adversarial = True,
    adapt_steps: int = AdaptConfig.steps,
    adapt_lr: float = AdaptConfig.lr,
    adapt_eps: AdaptEps = None,
    adapt_random_start: Annotated[
        bool, typer.Option(help="FGSM copies from a random start (Wong et al. 2020)")
    ] = False,
    adapt_augment: AdaptAugment = AdaptConfig.augment,
    split: Split = "test",
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs",
            help="evaluate on Omniglot's one-shot "
            "runs (runNN/class_labels.txt) instead of episodes",
        ),
    ] = None,
    seed: int = 0,
    data: DataPath = None,
    device: str = "auto",
    as_json: AsJson = False,
    output: Output = None,
    journal: Journal = None,
    first_episode: Annotated[
        int,
        typer.Option(
            help="start at this episode: split one evaluation over processes, each with its "
            "own --journal, then merge them (benchmarks/merge_journals.py)"
        ),
    ] = 0,
) -> None:
    """Accuracy under the attack suite on held-out episodes (or one-shot runs) after adaptation:
    each attack's own, the per-image worst case, and a black-box gradient-masking check."""
    logging.basicConfig(level=logging.WARNING)
    with clear_errors():
        if split not in ("test", "val"):
            raise ConfigError("--split must be 'test' or 'val'")
        eps_grid, suite, black = _attack_options(eps, attacks, blackbox)
        _check_episode_options(episodes, first_episode, blackbox_every, one_shot_runs=runs_dir)
        torch_device = pick_device(device)
        checkpoint = load_checkpoint(checkpoint_path)
        model, meta = model_from_checkpoint(checkpoint)
        adapt_config = AdaptConfig(
            steps=adapt_steps,
            lr=adapt_lr,
            eps=meta.eps if adapt_eps is None else adapt_eps,
            adversarial=adversarial,
            random_start=adapt_random_start,
            augment=adapt_augment,
        )
        common = {
            "adapt_config": adapt_config,
            "head_init": meta.head_init,
            "eps_grid": eps_grid,
            "attacks": suite,
            "blackbox": black,
            "seed": seed,
            "device": torch_device,
        }
        if runs_dir is not None:
            one_shot = load_one_shot_runs(runs_dir, InputSpec.from_card(checkpoint.card))
            result = evaluate_one_shot_runs(
                model.config, backbone_params(model), one_shot, **common
            )
            emit({"checkpoint": str(checkpoint.weights_path), **result}, output, as_json=True)
            return
        classes = runs.card_classes(checkpoint, data, model.config)
        held_out = runs.split_from_card(checkpoint.card).select(classes, split)
        sampler = EpisodeSampler(
            held_out, way=way, shot=shot, query=query, seed=seed, split_name=split
        )
        episode_options = {"blackbox_every": blackbox_every, "first_episode": first_episode}
        evaluation = _evaluate_episodes(model, sampler, episodes, journal, episode_options, common)
    payload = {"checkpoint": str(checkpoint.weights_path), "split": split, **evaluation.to_dict()}
    emit(payload, output, as_json=as_json)
    if not as_json:
        _print_table(
            evaluation,
            f"{checkpoint.weights_path.name}: {way}-way {shot}-shot, {split} split, "
            f"{'adversarial' if adversarial else 'clean'} adaptation",
        )


def _attack_options(
    eps: str, attacks: str, blackbox: str
) -> tuple[tuple[float, ...], list[Attack], Attack | None]:
    """The eps grid, the white-box suite and the black-box attack the options name."""
    eps_grid = parse_eps(eps)
    suite = parse_attacks(attacks)
    black = None if blackbox.strip().lower() == "none" else parse_attacks([blackbox])[0]
    return eps_grid, suite, black


def _check_episode_options(
    episodes: int, first_episode: int, blackbox_every: int, *, one_shot_runs: Path | None
) -> None:
    if blackbox_every < 1:
        raise ConfigError("--blackbox-every must be >= 1")
    if episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    if not 0 <= first_episode < episodes:
        raise ConfigError(f"--first-episode must lie in [0, --episodes={episodes})")
    if first_episode and one_shot_runs is not None:
        raise ConfigError("--first-episode splits episodes; --runs evaluates whole runs")


def _evaluate_episodes(
    model: FewShotNet,
    sampler: EpisodeSampler,
    episodes: int,
    journal: Path | None,
    episode_options: dict[str, Any],
    common: dict[str, Any],
) -> EpisodeEvaluation:
    """:func:`evaluate_episodes` of the checkpoint's backbone, with a progress bar."""
    with progress_bar() as progress:
        bar = progress.add_task("evaluate", total=episodes, status="")
        return evaluate_episodes(
            model.config,
            backbone_params(model),
            sampler,
            episodes=episodes,
            journal_path=journal,
            **episode_options,
            **common,
            on_episode=lambda done, total: advance(progress, bar, done, total),
        )
