"""The Python client and the adapt/predict/report commands against a real HTTP server."""

from __future__ import annotations

import io
import json
import os
import runpy
import sys
from pathlib import Path

import pytest
from fewshot_client import ApiError, FewShotClient
from PIL import Image
from typer.testing import CliRunner

from cli.main import app as cli_app

pytestmark = pytest.mark.redis


def test_client_end_to_end(server, token, folder):
    with FewShotClient(server, api_key=token) as api:
        assert api.base_models()["default"]
        created = api.adapt_folder(folder, steps=3)
        published = api.wait(created["job_id"], poll_s=0.1, until="model")
        assert published["model_ready"] and published["state"] in ("running", "succeeded")
        (prediction,) = api.predict(created["model_id"], [folder / "query.png"], robustness=True)
        assert prediction["label"] in {"class-0", "class-1"} and "robustness" in prediction
        seen = []
        job = api.wait(created["job_id"], poll_s=0.1, on_progress=lambda j: seen.append(j["state"]))
        assert job["state"] == "succeeded" and seen[-1] == "succeeded"
        with pytest.raises(ValueError, match="until must be"):
            api.wait(created["job_id"], until="soon")
        assert api.report(created["model_id"])["available"]
        assert Image.open(io.BytesIO(api.report_png(created["model_id"]))).format == "PNG"
        assert api.models()["total"] == 1
        with pytest.raises(ApiError) as missing:
            api.model("model_nope")
        assert (missing.value.status, missing.value.code) == (404, "model_not_found")
    with FewShotClient(server, api_key="fsk_wrong") as stranger, pytest.raises(ApiError) as denied:
        stranger.models()
    assert denied.value.code == "unauthorized"


def test_cli_adapt_predict_report(server, token, folder, tmp_path):
    runner = CliRunner()
    common = ["--url", server, "--api-key", token]
    adapted = runner.invoke(
        cli_app, ["adapt", str(folder), "--steps", "3", "--adaptation", "clean_only", *common]
    )
    assert adapted.exit_code == 0, adapted.output
    model_id = adapted.stdout.strip().splitlines()[-1]
    assert model_id.startswith("model_")
    predicted = runner.invoke(
        cli_app, ["predict", model_id, str(folder / "query.png"), "--json", *common]
    )
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)[0]["label"] in {"class-0", "class-1"}
    chart = tmp_path / "report.png"
    reported = runner.invoke(cli_app, ["report", model_id, "--plot", str(chart), *common])
    assert reported.exit_code == 0, reported.output
    assert Image.open(chart).format == "PNG"
    assert reported.stdout.lstrip().startswith("On ")  # the plain sentence comes first
    as_json = runner.invoke(cli_app, ["report", model_id, "--json", *common])
    assert json.loads(as_json.stdout)["served"] == "clean_only"
    bad = runner.invoke(cli_app, ["adapt", str(folder), "--adaptation", "fast", *common])
    assert bad.exit_code == 2 and "adaptation must be one of robust, clean_only" in bad.output

    def model_count() -> int:
        with FewShotClient(server, api_key=token) as api:
            return api.models()["total"]

    models_before = model_count()
    soon = runner.invoke(cli_app, ["adapt", str(folder), "--until", "soon", *common])
    assert soon.exit_code == 2 and "--until must be 'finished' or 'model'" in soon.output
    assert model_count() == models_before  # nothing was uploaded
    quick = runner.invoke(
        cli_app, ["adapt", str(folder), "--steps", "2", "--until", "model", *common]
    )
    assert quick.exit_code == 0, quick.output
    answered = runner.invoke(
        cli_app,
        ["predict", quick.stdout.strip().splitlines()[-1], str(folder / "query.png"), *common],
    )
    assert answered.exit_code == 0, answered.output

    unknown = runner.invoke(cli_app, ["predict", "model_nope", str(folder / "query.png"), *common])
    assert unknown.exit_code == 2 and "model_not_found" in unknown.output
    empty = runner.invoke(cli_app, ["adapt", str(tmp_path / "nowhere"), *common])
    assert empty.exit_code == 2 and "not a folder" in empty.output


def test_the_quickstart_example_runs(server, token, folder, tmp_path, monkeypatch, capsys):
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quickstart.py"
    chart = tmp_path / "chart.png"
    argv = [str(folder), str(folder / "query.png"), "--url", server, "--api-key", token]
    monkeypatch.setattr(sys, "argv", ["quickstart.py", *argv, "--out", str(chart)])
    runpy.run_path(str(example), run_name="__main__")
    printed = capsys.readouterr().out
    assert "succeeded" in printed and "survives an attack" in printed and "chart written" in printed
    assert Image.open(chart).format == "PNG"


def test_cli_base_models_create_list_use_delete(server, token, tmp_path):
    from tests.synthetic import shape_dataset

    dataset = tmp_path / "shapes"
    for name, files in shape_dataset(20, 5, size=16).items():
        (dataset / name).mkdir(parents=True)
        for index, data in enumerate(files):
            (dataset / name / f"{index}.png").write_bytes(data)
    runner = CliRunner()
    common = ["--url", server, "--api-key", token]
    made = runner.invoke(
        cli_app,
        [
            "base-models",
            "create",
            str(dataset),
            "--name",
            "shapes",
            "--image-size",
            "16",
            "--iterations",
            "4",
            *common,
        ],
    )
    assert made.exit_code == 0, made.output
    assert "10 classes to train on, 5 to validate, 5 to test" in made.output
    listed = runner.invoke(cli_app, ["base-models", "list", "--json", *common])
    own = next(m for m in json.loads(listed.stdout)["base_models"] if m["name"] == "shapes")
    assert own["state"] == "ready" and own["scope"] == "tenant"
    table = runner.invoke(cli_app, ["base-models", "list", *common])
    assert "shapes" in table.stdout and "tenant" in table.stdout
    support = tmp_path / "support"
    for name in sorted(os.listdir(dataset))[:3]:
        (support / name).mkdir(parents=True)
        for index in range(2):
            (support / name / f"{index}.png").write_bytes(
                (dataset / name / f"{index}.png").read_bytes()
            )
    adapted = runner.invoke(
        cli_app, ["adapt", str(support), "--base-model", "shapes", "--steps", "3", *common]
    )
    assert adapted.exit_code == 0, adapted.output
    twice = runner.invoke(
        cli_app,
        ["base-models", "create", str(dataset), "--name", "shapes", "--no-wait", *common],
    )
    assert twice.exit_code == 2 and "name_taken" in twice.output
    deleted = runner.invoke(cli_app, ["base-models", "delete", "shapes", *common])
    assert deleted.exit_code == 0, deleted.output
    again = runner.invoke(cli_app, ["base-models", "delete", "shapes", *common])
    assert again.exit_code == 2 and "base_model_not_found" in again.output
