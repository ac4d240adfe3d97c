"""A long evaluation stopped at any episode resumes from its journal to the same figures."""

from __future__ import annotations

import json

import pytest
import torch

from models.config import AdaptConfig
from models.episodes import EpisodeSampler
from models.evaluation import evaluate_episodes
from models.journal import JournalMismatch, params_fingerprint
from models.networks import FewShotNet, backbone_params
from tests.conftest import TINY
from tests.models.test_evaluation import _synthetic_classes


class Stop(Exception):
    pass


def _evaluate(params, journal=None, *, episodes=4, eps=(0.0, 0.1), stop_after=None):
    sampler = EpisodeSampler(_synthetic_classes(6), way=3, shot=1, query=2, seed=0)

    def on_episode(done: int, total: int) -> None:
        if done == stop_after:
            raise Stop

    return evaluate_episodes(
        TINY,
        params,
        sampler,
        episodes=episodes,
        adapt_config=AdaptConfig(steps=2),
        eps_grid=eps,
        attacks="fgsm,pgd-3",
        blackbox="square-4",
        blackbox_every=2,
        journal_path=journal,
        on_episode=on_episode,
    )


@pytest.fixture
def params():
    torch.manual_seed(0)
    return backbone_params(FewShotNet(TINY, n_way=3))


def test_a_resumed_evaluation_gives_the_figures_of_an_uninterrupted_one(params, tmp_path):
    journal = tmp_path / "run.jsonl"
    whole = _evaluate(params)
    with pytest.raises(Stop):
        _evaluate(params, journal, stop_after=2)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 2  # the protocol, then episodes 0 and 1
    resumed = _evaluate(params, journal)
    assert resumed.cells == whole.cells
    assert resumed.blackbox_episodes == whole.blackbox_episodes == 2
    assert len(journal.read_text().splitlines()) == 1 + 4
    # A finished journal answers without attacking anything: tamper with a stored accuracy
    # and the figures follow the journal.
    episodes = [json.loads(line) for line in journal.read_text().splitlines()]
    for row in episodes[1]["accuracy"]:
        row[2] = 0.0
    journal.write_text("".join(json.dumps(e) + "\n" for e in episodes))
    assert _evaluate(params, journal).cells != whole.cells


def test_a_line_cut_short_by_a_kill_is_dropped_and_measured_again(params, tmp_path):
    journal = tmp_path / "run.jsonl"
    whole = _evaluate(params, journal, episodes=3)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert _evaluate(params, journal, episodes=3).cells == whole.cells
    assert journal.read_text().splitlines() == lines


def test_another_protocol_is_refused_and_the_journal_left_alone(params, tmp_path):
    journal = tmp_path / "run.jsonl"
    _evaluate(params, journal, episodes=2)
    before = journal.read_text()
    with pytest.raises(JournalMismatch, match="another evaluation"):
        _evaluate(params, journal, eps=(0.0, 0.2))
    other = {name: value + 0.01 for name, value in params.items()}
    assert params_fingerprint(other) != params_fingerprint(params)
    with pytest.raises(JournalMismatch):
        _evaluate(other, journal)
    assert journal.read_text() == before


def test_a_damaged_journal_is_a_clear_error(params, tmp_path):
    journal = tmp_path / "run.jsonl"
    _evaluate(params, journal, episodes=3)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(JournalMismatch, match="line 2 is damaged"):
        _evaluate(params, journal, episodes=3)
    journal.write_text("garbage\n")
    with pytest.raises(JournalMismatch, match="does not start with a journal header"):
        _evaluate(params, journal, episodes=3)
