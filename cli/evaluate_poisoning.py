"""``fewshot evaluate-poisoning``: clean-query accuracy after adaptation on poisoned support
sets (the attacker optimises through the service's unrolled adaptation), against the clean
and random-noise support sets of the same episodes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli import runs
from cli.console import clear_errors, err, out_console, progress_bar
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
from models.core import (
    AdaptConfig,
    ConfigError,
    backbone_params,
    load_checkpoint,
    model_from_checkpoint,
    pick_device,
)
from models.data import EpisodeSampler
from models.evaluation import PoisonAttack, PoisonEvaluation, PoisonPlan, evaluate_poisoning

UNTRUSTED_EXIT = 3  # the figures were written, but a sanity check failed


def _print(result: PoisonEvaluation, title: str) -> None:
    table = Table(title=title)
    for column in ("support set", "eps", "clean-query accuracy", "95% CI", "episodes"):
        table.add_column(column)
    for cell in result.cells:
        table.add_row(
            cell.attack, f"{cell.eps:g}", f"{cell.mean:.4f}", f"± {cell.ci95:.4f}", str(cell.n)
        )
    out_console.print(table)
    oracle = result.attack.objective == "oracle"
    target = "the victim's queries: ORACLE, an upper bound" if oracle else "its surrogate images"
    out_console.print(f"attacker-* = the attacker's own objective (accuracy on {target})")
    for row in result.paired:
        out_console.print(
            f"paired @ eps {row['eps']:g}: {row['difference']} = {row['mean']:+.4f} ± "
            f"{row['ci95']:.4f} ({row['n']} episodes)"
        )
    for check in result.checks:
        mark = "[green]PASS[/]" if check.passed else "[bold red]FAIL[/]"
        out_console.print(f"sanity {mark} {check.name}: {check.detail}")


def evaluate_poisoning_command(
    checkpoint_path: Annotated[Path, typer.Argument(metavar="CHECKPOINT")],
    episodes: int = 40,
    way: int = 5,
    shot: int = 1,
    query: Annotated[int, typer.Option(help="the victim's query images per class")] = 5,
    surrogate: Annotated[int, typer.Option(help="the attacker's own images per class")] = 5,
    eps: Annotated[str, typer.Option(help="comma-separated L-inf budgets")] = "0.05,0.1",
    poison: Annotated[
        str, typer.Option(help="images the attacker controls: all, one-per-class or single")
    ] = "all",
    objective: Annotated[
        str,
        typer.Option(help="surrogate (its own images) or oracle (the victim's queries)"),
    ] = "surrogate",
    attack_steps: int = PoisonAttack.steps,
    more_steps: Annotated[
        int, typer.Option(help="step count of the 'more steps never weaker' check")
    ] = PoisonAttack.more_steps,
    more_steps_every: Annotated[
        int, typer.Option(help="run the check on every N-th episode (0: never)")
    ] = PoisonAttack.more_steps_every,
    adversarial: Adversarial = True,
    adapt_steps: int = AdaptConfig.steps,
    adapt_lr: float = AdaptConfig.lr,
    adapt_eps: AdaptEps = None,
    adapt_augment: AdaptAugment = AdaptConfig.augment,
    split: Split = "test",
    seed: int = 0,
    data: DataPath = None,
    device: str = "auto",
    as_json: AsJson = False,
    output: Output = None,
    journal: Journal = None,
    first_episode: int = 0,
) -> None:
    """Support-set poisoning: accuracy on clean queries after the service adapts to a support
    set the attacker perturbed (L-inf, through the unrolled adaptation), to the clean one and to
    random noise of the same budget; paired by episode, with sanity checks (exit status 3 when
    one fails)."""
    logging.basicConfig(level=logging.WARNING)
    with clear_errors():
        if split not in ("test", "val"):
            raise ConfigError("--split must be 'test' or 'val'")
        if query < 1 or surrogate < 1:
            raise ConfigError("--query and --surrogate must be at least 1")
        attack = PoisonAttack(
            mode=poison,
            eps_grid=parse_eps(eps),
            steps=attack_steps,
            more_steps=more_steps,
            more_steps_every=more_steps_every,
            objective=objective,
        )
        checkpoint = load_checkpoint(checkpoint_path)
        model, meta = model_from_checkpoint(checkpoint)
        adapt_config = AdaptConfig(
            steps=adapt_steps,
            lr=adapt_lr,
            eps=meta.eps if adapt_eps is None else adapt_eps,
            adversarial=adversarial,
            augment=adapt_augment,
        )
        classes = runs.card_classes(checkpoint, data, model.config)
        held_out = runs.split_from_card(checkpoint.card).select(classes, split)
        sampler = EpisodeSampler(
            held_out, way=way, shot=shot, query=query + surrogate, seed=seed, split_name=split
        )
        plan = PoisonPlan(
            model.config,
            backbone_params(model),
            sampler,
            query,
            adapt_config,
            meta.head_init,
            attack,
            seed=seed,
            device=pick_device(device),
        )
        with progress_bar() as progress:
            bar = progress.add_task("poison", total=episodes, status="")
            result = evaluate_poisoning(
                plan,
                episodes=episodes,
                first_episode=first_episode,
                journal_path=journal,
                on_episode=lambda done, total: advance(progress, bar, done, total),
            )
    payload = {"checkpoint": str(checkpoint.weights_path), "split": split, **result.to_dict()}
    emit(payload, output, as_json=as_json)
    if not as_json:
        _print(
            result,
            f"{checkpoint.weights_path.name}: {way}-way {shot}-shot, poison {poison} "
            f"({objective}), {split} split, adaptation {adapt_steps} steps"
            f"{f' x{adapt_augment} copies' if adapt_augment else ''}",
        )
    if not result.trusted:
        err.print("[bold red]a poisoning sanity check failed: do not trust these figures[/]")
        raise typer.Exit(UNTRUSTED_EXIT)
