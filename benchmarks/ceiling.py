"""The many-shot ceiling of docs/robustness.md: how robust a Conv-4 gets on the test characters
when it may train on many drawings of them, under the same attacks and eps as the few-shot rows.

A Conv-4 (the shipped backbone's architecture) is adversarially trained (PGD, Madry et al. 2018)
as one classifier over all test-alphabet characters on 15 of each character's 20 drawings. It
is deployed with BatchNorm statistics frozen on those training drawings. Each 5-way episode
draws 5 characters and attacks their 5 held-out drawings; the model answers among the episode's
5 characters only (its logits restricted to them), as a few-shot model does. Attacks, eps,
worst case, confidence intervals and sanity checks are those of ``fewshot evaluate``; episodes
are journaled, so a stopped run resumes.

Usage: python benchmarks/ceiling.py [--out docs/robustness/ceiling] [--episodes 100]
       [--epochs 60] [--train-eps 0.1] [--eps 0,0.05,0.1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import runs
from models.attacks import (
    parse_attacks,
    pgd,
    runnable,
)
from models.core import FewShotNet, deployable, hardware, load_checkpoint, model_from_checkpoint
from models.evaluation import (
    DEFAULT_ATTACKS,
    SANITY_EPS,
    EpisodeJournal,
    EpisodeTally,
    attack_episode,
    episode_seed,
    params_fingerprint,
    sanity_checks,
)

WAY = 5
TRAIN_PER_CLASS = 15  # drawings of each character to train on; the other 5 are the queries


class EpisodeClasses(nn.Module):
    """The many-shot classifier answering among one episode's characters only."""

    def __init__(self, model: nn.Module, classes: Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("classes", classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)[:, self.classes]


def split_drawings(images: list[Tensor], seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per character, a seeded choice of 15 drawings to train on; the rest held out."""
    x_train, y_train, x_test, y_test = [], [], [], []
    for label, drawings in enumerate(images):
        order = torch.from_numpy(np.random.default_rng([seed, label]).permutation(len(drawings)))
        train, test = order[:TRAIN_PER_CLASS], order[TRAIN_PER_CLASS:]
        x_train.append(drawings[train])
        x_test.append(drawings[test])
        y_train.append(torch.full((len(train),), label))
        y_test.append(torch.full((len(test),), label))
    to_float = lambda parts: torch.cat(parts).float() / 255.0  # noqa: E731
    return to_float(x_train), torch.cat(y_train), to_float(x_test), torch.cat(y_test)


def shifted(x: Tensor, generator: torch.Generator, pixels: int = 2) -> Tensor:
    """Each image moved by a random whole-pixel offset of up to ``pixels`` (zero-padded)."""
    padded = F.pad(x, (pixels,) * 4)
    size = x.shape[-1]
    offsets = torch.randint(0, 2 * pixels + 1, (len(x), 2), generator=generator)
    return torch.stack(
        [padded[i, :, r : r + size, c : c + size] for i, (r, c) in enumerate(offsets.tolist())]
    )


def train(config, x: Tensor, y: Tensor, n_classes: int, args: argparse.Namespace) -> dict:
    """PGD adversarial training (loss on the adversarial images only), eps ramped up over the
    first ``ramp`` epochs; BatchNorm on batch statistics, as in meta-training."""
    torch.manual_seed(args.seed)
    model = FewShotNet(config, n_way=n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        eps = args.train_eps * min(1.0, (epoch + 1) / args.ramp)
        order = torch.randperm(len(x), generator=generator)
        total, fooled = 0.0, 0
        for start in range(0, len(x), args.batch):
            batch = order[start : start + args.batch]
            x_batch, y_batch = shifted(x[batch], generator), y[batch]
            x_adv = pgd(
                model, x_batch, y_batch, eps=eps, steps=args.train_steps, generator=generator
            )
            model.train()
            logits = model(x_adv)
            loss = F.cross_entropy(logits, y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            fooled += (logits.argmax(1) != y_batch).sum().item()
        print(
            f"epoch {epoch + 1}/{args.epochs} eps {eps:.3f} adversarial loss "
            f"{total / len(x):.3f} train error under PGD {fooled / len(x):.3f}",
            flush=True,
        )
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="models/pretrained/adml-omniglot")
    parser.add_argument("--out", type=Path, default=Path("docs/robustness/ceiling"))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--ramp", type=int, default=10, help="epochs of the eps ramp")
    parser.add_argument("--train-eps", type=float, default=0.1)
    parser.add_argument("--train-steps", type=int, default=7, help="PGD steps in training")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--eps", default="0,0.05,0.1")
    parser.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS))
    parser.add_argument("--blackbox", default="square-1000")
    parser.add_argument("--blackbox-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weights",
        type=Path,
        help="trained weights, read if present (default: OUT/ceiling.safetensors)",
    )
    return parser.parse_args()


def trained_weights(config, x: Tensor, y: Tensor, n_classes: int, args) -> dict[str, Tensor]:
    """The weights at ``args.weights`` if present, else trained now and written there."""
    if args.weights.exists():
        weights = load_file(args.weights)
        print(f"trained weights read from {args.weights}", flush=True)
        return weights
    weights = train(config, x, y, n_classes, args)
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, args.weights)
    return weights


def episode_queries(
    x_test: Tensor, y_test: Tensor, n_classes: int, seed: int, index: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Episode ``index``'s characters and their held-out drawings, labelled 0..WAY-1."""
    queries = len(x_test) // n_classes
    rng = np.random.default_rng([seed, 1_000_000 + index])
    chosen = torch.from_numpy(rng.choice(n_classes, size=WAY, replace=False))
    rows = torch.cat([(y_test == c).nonzero().flatten() for c in chosen.tolist()])
    return chosen, x_test[rows], torch.arange(WAY).repeat_interleave(queries)


def attack_episodes(journal, model, x_test, y_test, n_classes, grid, suite, black, args):
    """Every episode, from the journal when it holds it, else attacked and journaled."""
    tally = EpisodeTally()
    for index in range(args.episodes):
        episode = journal.get(index)
        if episode is None:
            chosen, x, y = episode_queries(x_test, y_test, n_classes, args.seed, index)
            episode = attack_episode(
                EpisodeClasses(model, chosen),
                x,
                y,
                grid,
                suite,
                black if index % args.blackbox_every == 0 else None,
                generator=torch.Generator().manual_seed(episode_seed(args.seed, index)),
            )
            episode["index"] = index
            journal.record(episode)
            print(f"episode {index + 1}/{args.episodes}", flush=True)
        tally.add(episode)
    return tally


def write_result(args, tally: EpisodeTally, protocol: dict, skipped: dict, queries: int, times):
    """``ceiling.json`` beside the journal, and the cells on stdout."""
    started, trained = times
    cells = tally.cells()
    result = {
        "what": "many-shot ceiling: Conv-4 PGD-trained on 15 drawings of every test character",
        "machine": hardware(),
        "date": dt.date.today().isoformat(),
        "train_seconds": round(trained - started, 1),
        "seconds": round(time.time() - started, 1),
        "way": WAY,
        "query_per_class": queries,
        "episodes": args.episodes,
        "protocol": protocol,
        "skipped": skipped,
        "blackbox_episodes": tally.blackbox_episodes,
        "cells": [asdict(c) for c in cells],
        "checks": [
            asdict(c) for c in sanity_checks(cells, chance=1 / WAY, blackbox_pairs=tally.pairs())
        ],
    }
    (args.out / "ceiling.json").write_text(json.dumps(result, indent=2) + "\n")
    for cell in cells:
        print(
            f"{cell.attack:>12} eps {cell.eps:<5g} {100 * cell.mean:5.1f} ± {100 * cell.ci95:.1f}"
        )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    args.weights = args.weights or args.out / "ceiling.safetensors"
    started = time.time()
    checkpoint = load_checkpoint(args.checkpoint)
    config = model_from_checkpoint(checkpoint)[0].config
    classes = runs.card_classes(checkpoint, None, config)
    test_classes = runs.split_from_card(checkpoint.card).select(classes, "test")
    x_train, y_train, x_test, y_test = split_drawings([c.images for c in test_classes], args.seed)
    recipe = {k: v for k, v in vars(args).items() if k not in ("out", "weights", "episodes")}
    recipe = {k: str(v) for k, v in recipe.items()}
    weights = trained_weights(config, x_train, y_train, len(test_classes), args)
    trained = time.time()
    params = {k: v for k, v in weights.items() if "running" not in k and "num_batches" not in k}
    model = deployable(config, params, x_train)

    grid = sorted({0.0, *(float(e) for e in args.eps.split(",")), SANITY_EPS})
    suite, skipped = runnable(parse_attacks(args.attacks), WAY)
    black = parse_attacks([args.blackbox])[0]
    args.out.mkdir(parents=True, exist_ok=True)
    protocol = {
        "model": params_fingerprint(params),
        "recipe": recipe,
        "classes": [c.name for c in test_classes],
        "eps": grid,
        "attacks": [a.name for a in suite],
        "blackbox": black.name,
        "blackbox_every": args.blackbox_every,
        "seed": args.seed,
    }
    journal = EpisodeJournal(args.out / "ceiling.jsonl", protocol)
    n_classes = len(test_classes)
    tally = attack_episodes(journal, model, x_test, y_test, n_classes, grid, suite, black, args)
    queries = len(x_test) // n_classes
    write_result(args, tally, protocol, skipped, queries, (started, trained))


if __name__ == "__main__":
    main()
