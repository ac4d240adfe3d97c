"""An append-only record of finished evaluation episodes, so that a long evaluation (600
episodes of the strong suite take hours on a CPU) can stop at any moment and resume.

The file is JSON lines: a header naming everything that decides an episode's outcome (model
fingerprint, episode shape, seed, eps grid, attacks, adaptation), then one line per finished
episode. Resuming with a different header is refused: mixing two protocols in one mean would be
silent nonsense. A last line cut short by a kill is dropped (logged) and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch

from models.core import ConfigError, Params, atomic_write

logger = logging.getLogger(__name__)


class JournalMismatch(ConfigError):
    """The journal on disk was written by a different evaluation protocol."""


def params_fingerprint(params: Params) -> str:
    """SHA-256 over the parameters' names, shapes and values (first 16 hex digits)."""
    digest = hashlib.sha256()
    for name in sorted(params):
        tensor = params[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


class EpisodeJournal:
    """Finished episodes by index; ``record`` appends one and flushes it to disk."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = json.loads(json.dumps(header))  # as it reads back from disk
        self.episodes: dict[int, dict[str, Any]] = {}
        if path.exists() and path.stat().st_size > 0:
            self._load()
        else:  # the header appears whole or not at all
            atomic_write(
                path, lambda tmp: tmp.write_text(json.dumps({"header": self.header}) + "\n")
            )

    def _load(self) -> None:
        lines = self.path.read_text().splitlines()
        try:
            first = json.loads(lines[0])
        except json.JSONDecodeError as error:
            raise JournalMismatch(f"{self.path} does not start with a journal header") from error
        if not isinstance(first, dict) or first.get("header") != self.header:
            raise JournalMismatch(
                f"{self.path} was written by another evaluation (model, episodes, eps, attacks "
                "or adaptation differ); delete it or pass another journal"
            )
        kept = [lines[0]]
        for number, line in enumerate(lines[1:], start=2):
            try:
                episode = json.loads(line)
            except json.JSONDecodeError as error:
                if number != len(lines):
                    raise JournalMismatch(
                        f"{self.path}: line {number} is damaged; delete the journal to start over"
                    ) from error
                logger.warning("%s: dropping line %d, cut short by a kill", self.path, number)
                break
            self.episodes[int(episode["index"])] = episode
            kept.append(line)
        if len(kept) != len(lines):
            self.path.write_text("\n".join(kept) + "\n")

    def get(self, index: int) -> dict[str, Any] | None:
        return self.episodes.get(index)

    def record(self, episode: dict[str, Any]) -> None:
        line = json.dumps(episode)
        with self.path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
        self.episodes[int(episode["index"])] = json.loads(line)


def merge_journals(target: Path, sources: list[Path]) -> dict[Path, int]:
    """Add to ``target`` the episodes of ``sources`` that it lacks; how many each source added.

    Every journal must carry the same protocol header. An episode found twice must hold the same
    figures (an episode is determined by its index). Everything is checked before ``target`` is
    written, once; on any refusal no file changes. Sources are only read: a last line cut short
    (a kill mid-write) is left out, and measured again when that journal's run resumes; the
    target's own cut line is dropped, as resuming it would.
    """
    header, merged = read_journal(target)
    added: dict[Path, int] = {}
    for source in sources:
        source_header, incoming = read_journal(source)
        if source_header != header:
            raise JournalMismatch(f"{source} and {target} were written by different evaluations")
        count = 0
        for index, episode in sorted(incoming.items()):
            if index not in merged:
                merged[index] = episode
                count += 1
            elif merged[index] != episode:
                raise JournalMismatch(f"episode {index} differs between {source} and {target}")
        added[source] = count
    lines = [json.dumps({"header": header})] + [json.dumps(e) for e in merged.values()]
    text = "\n".join(lines) + "\n"
    if sum(added.values()) or target.read_text() != text:
        atomic_write(target, lambda tmp: tmp.write_text(text))
    return added


def read_journal(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """A journal's header and finished episodes by index, in file order, without writing it.

    A last line cut short (a kill, or a run still writing it) is not a finished episode and is
    left out; a damaged line before the last is refused with :class:`JournalMismatch`.
    """
    try:
        lines = path.read_text().splitlines()
        first = json.loads(lines[0]) if lines else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise JournalMismatch(f"{path} is not a readable evaluation journal") from error
    if not isinstance(first, dict) or "header" not in first:
        raise JournalMismatch(f"{path} does not start with a journal header")
    episodes: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            episode = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                break  # cut short by a kill: that episode is not finished
            raise JournalMismatch(f"{path}: line {number} is damaged") from error
        episodes[int(episode["index"])] = episode
    return first["header"], episodes


class MeasuredPlan(Protocol):
    """What :func:`journaled_episodes` runs: an evaluation's episodes, seeded by index."""

    def protocol(self) -> dict[str, Any]: ...

    def measure(self, index: int) -> dict[str, Any]: ...


def journaled_episodes(
    plan: MeasuredPlan,
    episodes: int,
    first_episode: int,
    journal_path: Path | None,
    on_episode: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Episodes ``first_episode .. episodes - 1`` of ``plan``, each read from the journal at
    ``journal_path`` when it is there (a resumed evaluation) or measured and recorded;
    ``on_episode(done, episodes)`` after each."""
    journal = None if journal_path is None else EpisodeJournal(journal_path, plan.protocol())
    for index in range(first_episode, episodes):
        episode = journal.get(index) if journal is not None else None
        if episode is None:
            episode = plan.measure(index)
            if journal is not None:
                journal.record(episode)
        yield episode
        if on_episode is not None:
            on_episode(index + 1, episodes)
