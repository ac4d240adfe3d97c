"""``fewshot evaluate-poisoning`` end to end on Omniglot's test alphabets with a small model:
figures, sanity checks, a journal that resumes, clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from tests.service_fixtures import save_tiny_base_model

runner = CliRunner()
SPLIT = {
    "train": ["Balinese", "Early_Aramaic", "Latin", "Sanskrit", "Tagalog"],
    "val": ["Japanese_(katakana)"],
    "test": ["Greek", "Korean"],
    "seed": 0,
}


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_evaluate_poisoning_measures_checks_and_resumes(omniglot_path, tmp_path):
    save_tiny_base_model(
        tmp_path / "tiny", data={"kind": "omniglot", "path": str(omniglot_path), "split": SPLIT}
    )
    args = [
        "evaluate-poisoning",
        tmp_path / "tiny",
        "--episodes",
        "2",
        "--way",
        "3",
        "--query",
        "2",
        "--surrogate",
        "2",
        "--eps",
        "0.1",
        "--poison",
        "one-per-class",
        "--shot",
        "2",
        "--attack-steps",
        "1",
        "--more-steps",
        "2",
        "--more-steps-every",
        "2",
        "--adapt-steps",
        "2",
        "--journal",
        tmp_path / "poison.jsonl",
        "--json",
    ]
    first = _run(*args)
    assert first.exit_code in (0, 3), first.output  # 3: a check failed (figures still written)
    payload = json.loads(first.stdout)
    assert payload["episodes"] == 2 and payload["surrogate"] == 2 and payload["query"] == 2
    assert payload["attack"]["mode"] == "one-per-class"
    kinds = {(c["attack"], c["eps"]) for c in payload["cells"]}
    assert {("clean", 0.0), ("poisoned", 0.0), ("poisoned", 0.1), ("random", 0.1)} <= kinds
    assert ("poisoned-more", 0.1) in kinds and ("attacker-poisoned", 0.1) in kinds
    checks = {c["name"]: c["passed"] for c in payload["checks"]}
    assert checks["zero_budget_is_clean"] is True
    assert first.exit_code == (0 if all(checks.values()) else 3)
    assert len((tmp_path / "poison.jsonl").read_text().splitlines()) == 1 + 2
    again = _run(*args)  # every episode is in the journal: the same figures
    assert again.exit_code == first.exit_code
    assert json.loads(again.stdout)["cells"] == payload["cells"]
    other = _run(*args[:-1], "--adapt-steps", "3", "--json")  # another adaptation
    assert other.exit_code == 2 and "written by another evaluation" in other.output
    mode = _run("evaluate-poisoning", tmp_path / "tiny", "--poison", "half")
    assert mode.exit_code == 2 and "poison mode must be one of" in mode.output
    objective = _run("evaluate-poisoning", tmp_path / "tiny", "--objective", "queries")
    assert objective.exit_code == 2 and "objective must be one of" in objective.output
