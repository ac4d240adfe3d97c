"""The ``fewshot`` CLI end to end: meta-train, resume, evaluate, and its clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from models.core import load_checkpoint, model_from_checkpoint

runner = CliRunner()
SMALL = ["--width", "8", "--meta-batch", "2", "--query", "2", "--val-episodes", "2"]


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_meta_train_resume_and_evaluate_on_omniglot(omniglot_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # without --data, the data beside the checkout are found
    data = ["--data", str(omniglot_path)]
    train = ["--validate-every", "1", *SMALL]
    first = _run("meta-train", "--out", tmp_path / "run", "--iterations", "2", *train)
    assert first.exit_code == 0, first.output
    checkpoint = load_checkpoint(tmp_path / "run")
    card = checkpoint.card
    assert card["iterations"] == 2 and card["algo"] == "adml"
    assert card["data"]["path"] == str(omniglot_path.resolve())
    assert [v["iteration"] for v in card["validation"]] == [1, 2]
    assert set(card["data"]["split"]["test"]).isdisjoint(card["data"]["split"]["train"])
    assert card["command"].startswith("fewshot meta-train --out ")
    assert "--iterations 2" in card["command"] and "--second-order" in card["command"]
    model, meta = model_from_checkpoint(checkpoint)
    assert meta.query == 2 and model.config.width == 8

    resumed = _run("meta-train", "--out", tmp_path / "run", "--iterations", "3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    straight = _run(
        "meta-train", "--out", tmp_path / "straight", "--iterations", "3", *train, *data
    )
    assert straight.exit_code == 0, straight.output
    a, b = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "straight")
    assert a.card["iterations"] == 3 and len(a.card["validation"]) == 3
    for name, tensor in b.tensors.items():  # the same computation in the same order: same bits
        assert torch.equal(a.tensors[name], tensor), name

    warm = _run(
        "meta-train",
        "--out",
        tmp_path / "warm",
        "--iterations",
        "1",
        *train,
        "--init",
        tmp_path / "run",
        "--attack",
        "pgd",
        "--attack-steps",
        "2",
        "--trades",
        "1",
        "--eps-ramp",
        "5",
    )
    assert warm.exit_code == 0, warm.output
    warm_card = load_checkpoint(tmp_path / "warm").card
    assert warm_card["cli_args"]["init"] == str(tmp_path / "run")
    lineage = warm_card["cli_args"]["init_lineage"]  # what it grew from, budget included
    assert lineage["iterations"] == 3 and lineage["algo"] == "adml" and lineage["weights"]
    assert warm_card["meta"]["attack"] == "pgd" and warm_card["meta"]["trades"] == 1.0
    resplit = ["--init", tmp_path / "run", "--split-seed", "1"]
    other = _run("meta-train", "--out", tmp_path / "other", "--iterations", "1", *train, *resplit)
    assert other.exit_code != 0 and "another split" in other.output  # test data would leak
    assert not (tmp_path / "other.safetensors").exists()

    evaluate_args = (
        "evaluate",
        tmp_path / "run",
        "--episodes",
        "2",
        "--query",
        "2",
        "--attacks",
        "fgsm,pgd-2,apgd-ce-2,apgd-t-2",
        "--blackbox",
        "square-3",
        "--journal",
        tmp_path / "evaluation.jsonl",
        "--json",
    )
    evaluated = _run(*evaluate_args)
    assert evaluated.exit_code == 0, evaluated.output
    payload = json.loads(evaluated.stdout)
    assert payload["episodes"] == 2 and payload["split"] == "test"
    cells = {(c["attack"], c["eps"]): c for c in payload["cells"]}
    assert {
        ("clean", 0.0),
        ("pgd-2", 0.1),
        ("fgsm", 0.2),
        ("worst", 0.05),
        ("apgd-t-2", 0.5),
    } <= set(cells)
    assert ("square-3", 0.1) in cells and payload["blackbox_episodes"] == 1
    assert payload["attacks"] == ["fgsm", "pgd-2", "apgd-ce-2", "apgd-t-2"]
    assert 0.0 <= cells[("clean", 0.0)]["mean"] <= 1.0
    assert {c["name"] for c in payload["checks"]} >= {
        "iterative_le_fgsm",
        "blackbox_weaker",
        "chance_at_large_eps",
    }
    assert len((tmp_path / "evaluation.jsonl").read_text().splitlines()) == 1 + 2
    resumed = _run(*evaluate_args)  # every episode is in the journal: same figures
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["cells"] == payload["cells"]
    other = _run(*evaluate_args, "--eps", "0,0.3")
    assert other.exit_code == 2 and "written by another evaluation" in other.output
    header = json.loads((tmp_path / "evaluation.jsonl").read_text().splitlines()[0])["header"]
    assert "augment" not in header["adapt"]  # as journals written before the option existed
    augmented = _run(*evaluate_args, "--adapt-augment", "2")  # another adaptation: refused
    assert augmented.exit_code == 2 and "written by another evaluation" in augmented.output
    unknown = _run("evaluate", tmp_path / "run", "--attacks", "fgsm,cw-9", "--episodes", "1")
    assert unknown.exit_code != 0 and "unknown attack 'cw-9'" in unknown.output

    too_wide = _run("evaluate", tmp_path / "run", "--way", "70", "--episodes", "1")
    assert too_wide.exit_code == 2
    assert "test split has 64 classes; 70-way episodes need at least 70" in too_wide.output


def test_missing_data_path_is_a_clear_error(tmp_path):
    result = _run("meta-train", "--out", tmp_path / "x", "--data", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "data path does not exist" in result.output
    assert not (tmp_path / "x.safetensors").exists()


def test_bad_options_are_clear_errors(tmp_path):
    result = _run("meta-train", "--out", tmp_path / "x", "--algo", "reptile")
    assert result.exit_code == 2 and "algo must be 'adml', 'maml' or 'aq'" in result.output
    result = _run("evaluate", tmp_path / "absent", "--eps", "0,2")
    assert result.exit_code == 2 and "--eps values must lie in [0, 1]" in result.output
    result = _run("evaluate", tmp_path / "absent")
    assert result.exit_code == 2 and "checkpoint file missing" in result.output
    for options, message in (
        (("--episodes", "10", "--first-episode", "10"), "--first-episode must lie in [0, "),
        (("--first-episode", "-1"), "--first-episode must lie in [0, "),
        (("--episodes", "0"), "--episodes must be at least 1"),
        (("--first-episode", "2", "--runs", str(tmp_path)), "--runs evaluates whole runs"),
    ):
        result = _run("evaluate", tmp_path / "absent", *options)
        assert result.exit_code == 2 and message in result.output, result.output


def _rgb_folder(root, classes: int, per_class: int):
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / f"class{k}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)
        for i in range(per_class):
            pixels = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
            noisy = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy, "RGB").save(folder / f"{i}.png")


def test_meta_train_on_an_rgb_folder_dataset(tmp_path):
    _rgb_folder(tmp_path / "data", classes=6, per_class=3)
    args = [
        "--dataset",
        "folder",
        "--channels",
        "3",
        "--image-size",
        "16",
        "--way",
        "2",
        "--shot",
        "1",
        "--query",
        "1",
        "--val-groups",
        "2",
        "--test-groups",
        "2",
        "--no-rotations",
        "--iterations",
        "2",
        "--validate-every",
        "2",
        "--width",
        "4",
        "--val-episodes",
        "1",
        "--data",
        tmp_path / "data",
    ]
    result = _run("meta-train", "--out", tmp_path / "rgb", *args)
    assert result.exit_code == 0, result.output
    card = load_checkpoint(tmp_path / "rgb").card
    assert card["backbone"]["in_channels"] == 3 and card["data"]["kind"] == "folder"
    again = _run("meta-train", "--out", tmp_path / "rgb", *args)
    assert again.exit_code == 2 and "pass --resume or another --out" in again.output


def test_unreadable_image_and_too_small_split(tmp_path):
    _rgb_folder(tmp_path / "data", classes=4, per_class=2)
    common = [
        "--dataset",
        "folder",
        "--channels",
        "3",
        "--image-size",
        "16",
        "--data",
        tmp_path / "data",
        "--no-rotations",
    ]
    result = _run(
        "meta-train",
        "--out",
        tmp_path / "a",
        "--way",
        "3",
        "--val-groups",
        "1",
        "--test-groups",
        "1",
        *common,
    )
    assert result.exit_code == 2
    assert "the train split has 2 classes; 3-way episodes need at least 3" in result.output
    (tmp_path / "data" / "class0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = _run("meta-train", "--out", tmp_path / "b", *common)
    assert result.exit_code == 2 and "cannot read image" in result.output
    assert "broken.png" in result.output
