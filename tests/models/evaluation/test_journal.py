"""A long evaluation stopped at any episode resumes from its journal to the same figures."""

from __future__ import annotations

import json

import pytest
import torch

from models.core import AdaptConfig, ConfigError, FewShotNet, backbone_params
from models.data import EpisodeSampler
from models.evaluation import (
    JournalMismatch,
    evaluate_episodes,
    merge_journals,
    params_fingerprint,
    read_journal,
)
from tests.conftest import TINY
from tests.models.evaluation.test_evaluation import _synthetic_classes


class Stop(Exception):
    pass


def _evaluate(
    params, journal=None, *, episodes=4, eps=(0.0, 0.1), stop_after=None, first_episode=0
):
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
        first_episode=first_episode,
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


def test_an_evaluation_split_over_processes_merges_to_the_figures_of_one(params, tmp_path):
    whole = _evaluate(params)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    with pytest.raises(Stop):
        _evaluate(params, first, stop_after=2)  # episodes 0 and 1, then stopped
    tail = _evaluate(params, second, first_episode=2)
    assert tail.episodes == 2 and tail.blackbox_episodes == 1  # episode 2 of 0..3
    assert [json.loads(line).get("index") for line in second.read_text().splitlines()] == [
        None,
        2,
        3,
    ]
    assert merge_journals(first, [second]) == {second: 2}
    assert merge_journals(first, [second]) == {second: 0}  # merging again adds nothing
    assert len(first.read_text().splitlines()) == 1 + 4
    merged = _evaluate(params, first)
    assert merged.cells == whole.cells and merged.episodes == 4
    # Every episode came from the journal: tamper with the merged-in one and the figures follow.
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    for row in lines[-1]["accuracy"]:
        row[2] = 0.0
    first.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert _evaluate(params, first).cells != whole.cells
    with pytest.raises(ConfigError, match="first episode must lie in"):
        _evaluate(params, first, first_episode=4)


def test_merging_other_protocols_or_disagreeing_episodes_is_refused(params, tmp_path):
    target, other, twin, tail = (
        tmp_path / f"{n}.jsonl" for n in ("target", "other", "twin", "tail")
    )
    _evaluate(params, target, episodes=2)
    _evaluate(params, other, episodes=2, eps=(0.0, 0.2))
    _evaluate(params, tail, episodes=4, first_episode=2)
    lines = target.read_text().splitlines()
    target.write_text("\n".join(lines) + "\n" + lines[-1][:20])  # a kill cut its last line
    before, tail_before = target.read_text(), tail.read_text()
    with pytest.raises(JournalMismatch, match="different evaluations"):
        merge_journals(target, [tail, other])  # tail is fine, other is not: nothing is written
    episode = json.loads(lines[2])
    episode["accuracy"][0][2] = 1.0 - episode["accuracy"][0][2]
    twin.write_text(f"{lines[0]}\n{json.dumps(episode)}\n")
    with pytest.raises(JournalMismatch, match="episode 1 differs"):
        merge_journals(target, [twin])
    (tmp_path / "junk.jsonl").write_text("not a journal\n")
    with pytest.raises(JournalMismatch, match="not a readable evaluation journal"):
        merge_journals(target, [tmp_path / "junk.jsonl"])
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(f"{lines[0]}\n{{cut\n{lines[1]}\n")
    with pytest.raises(JournalMismatch, match="line 2 is damaged"):
        merge_journals(target, [damaged])
    assert target.read_text() == before and tail.read_text() == tail_before


def test_a_source_cut_short_is_only_read_and_its_last_episode_left_out(params, tmp_path):
    target, source = tmp_path / "target.jsonl", tmp_path / "source.jsonl"
    _evaluate(params, target, episodes=2)
    _evaluate(params, source, episodes=4, first_episode=2)
    lines = source.read_text().splitlines()
    source.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # killed mid-write
    cut = source.read_text()
    assert merge_journals(target, [source]) == {source: 1}  # episode 2; 3 was not finished
    assert source.read_text() == cut
    indices = [json.loads(line).get("index") for line in target.read_text().splitlines()]
    assert indices == [None, 0, 1, 2]


def test_reading_a_journal_being_written_leaves_its_cut_line_out_and_writes_nothing(
    params, tmp_path
):
    journal = tmp_path / "run.jsonl"
    _evaluate(params, journal, episodes=3)
    header, episodes = read_journal(journal)
    assert header["episodes"]["way"] == 3 and sorted(episodes) == [0, 1, 2]
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines) + "\n" + lines[-1][:25])  # a line half written
    written = journal.read_text()
    assert sorted(read_journal(journal)[1]) == [0, 1, 2]
    assert journal.read_text() == written  # a reader never rewrites a live journal
    journal.write_text("\n".join([lines[0], lines[1][:25], *lines[2:]]) + "\n")
    with pytest.raises(JournalMismatch, match="line 2 is damaged"):
        read_journal(journal)
