"""Omniglot's one-shot runs format, with runs built from the real drawings in ../shared."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from models.data import DataError, InputSpec
from models.evaluation import load_one_shot_runs


def _write_runs(root: Path, omniglot: Path) -> Path:
    """run01: test items are the training drawings themselves, shuffled (must score 0 error);
    run02: test items are other people's drawings of the same 20 characters."""
    with zipfile.ZipFile(omniglot / "images_background_small1.zip") as archive:
        names = sorted(n for n in archive.namelist() if "/Korean/" in n and n.endswith(".png"))
        by_character: dict[str, list[str]] = {}
        for name in names:
            by_character.setdefault(name.split("/")[-2], []).append(name)
        characters = sorted(by_character)[:20]
        for run, test_drawer in (("run01", 0), ("run02", 1)):
            (root / run / "training").mkdir(parents=True)
            (root / run / "test").mkdir()
            lines = []
            for k, character in enumerate(characters, 1):
                drawings = by_character[character]
                (root / run / "training" / f"class{k:02d}.png").write_bytes(
                    archive.read(drawings[0])
                )
                item = (k * 7) % 20 + 1  # items in another order than classes
                (root / run / "test" / f"item{item:02d}.png").write_bytes(
                    archive.read(drawings[test_drawer])
                )
                lines.append(f"{run}/test/item{item:02d}.png {run}/training/class{k:02d}.png")
            (root / run / "class_labels.txt").write_text("\n".join(sorted(lines)) + "\n")
    return root


def test_runs_are_parsed_and_scored(omniglot_path, tmp_path, base_models_dir):
    runs = _write_runs(tmp_path / "runs", omniglot_path)
    loaded = load_one_shot_runs(runs, InputSpec(1, 28, True))
    assert [r.name for r in loaded] == ["run01", "run02"]
    assert loaded[0].x_train.shape == (20, 1, 28, 28) and sorted(loaded[0].y_test.tolist()) == list(
        range(20)
    )

    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(base_models_dir / "tiny-adml"),
            "--runs",
            str(runs),
            "--json",
            "--adapt-steps",
            "0",
            "--eps",
            "0,0.1",
            "--attacks",
            "fgsm,pgd-2,apgd-ce-3",
            "--blackbox",
            "square-5",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["runs"]["run01"]["clean_error"] == 0.0  # a drawing is its own prototype
    assert 0.0 <= payload["runs"]["run02"]["clean_error"] <= 1.0
    assert payload["clean_error"] == pytest.approx(payload["runs"]["run02"]["clean_error"] / 2)
    assert set(payload) >= {"clean_error", "fgsm_error", "pgd_error", "worst_error", "items"}
    assert payload["items"] == 40 and set(payload["pgd_error"]) == {"0", "0.1"}
    # by construction (worst = clean and every attack), unlike pgd >= clean, which an
    # attack that happens to fix a wrong drawing could break
    assert payload["worst_error"]["0.1"] >= payload["clean_error"]
    for attack in ("pgd-2", "apgd-ce-3", "fgsm"):  # worst is over the whole suite
        assert payload["worst_error"]["0.1"] >= payload["attack_errors"][attack]["0.1"]
    assert payload["pgd_error"] == payload["attack_errors"]["pgd-2"]
    assert set(payload["blackbox_error"]) == {"0", "0.1"} and payload["blackbox"] == "square-5"


def test_bad_runs_folders(tmp_path):
    with pytest.raises(DataError, match=r"no runNN/class_labels\.txt"):
        load_one_shot_runs(tmp_path, InputSpec(1, 28, True))
    (tmp_path / "run01").mkdir()
    (tmp_path / "run01" / "class_labels.txt").write_text("only-one-field\n")
    with pytest.raises(DataError, match="expected 'test/item training/class'"):
        load_one_shot_runs(tmp_path, InputSpec(1, 28, True))
    (tmp_path / "run01" / "class_labels.txt").write_text("run01/test/a.png run01/training/b.png\n")
    with pytest.raises(DataError, match="missing image"):
        load_one_shot_runs(tmp_path, InputSpec(1, 28, True))
