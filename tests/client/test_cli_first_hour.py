"""What a new user meets in the command line's first hour, against a real server: validation
images from a folder, a connection error that names the URL and FEWSHOT_URL, the console's
words (yes / no / not checked) in predictions, and a start banner whose curl works with keys."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from fewshot_client import FewShotClient
from typer.testing import CliRunner

from cli.main import app as cli_app
from cli.serve import start_banner
from tests.service_fixtures import free_port, image_bytes

WIDE = {"COLUMNS": "200"}  # rich's tables keep each cell on one line


def class_folders(root: Path, first_index: int) -> Path:
    """class-0 and class-1, two PNG files each, numbered from ``first_index``."""
    for cls in range(2):
        (root / f"class-{cls}").mkdir(parents=True)
        for index in range(first_index, first_index + 2):
            (root / f"class-{cls}" / f"{index}.png").write_bytes(image_bytes(cls, index))
    return root


@pytest.mark.redis
def test_adapt_sends_a_validation_folder(server, token, folder, tmp_path):
    validation = class_folders(tmp_path / "validation", first_index=5)
    common = ["--url", server, "--api-key", token, "--steps", "2", "--report", "none"]
    runner = CliRunner()
    adapted = runner.invoke(
        cli_app, ["adapt", str(folder), "--validation", str(validation), "--no-wait", *common]
    )
    assert adapted.exit_code == 0, adapted.output
    with FewShotClient(server, api_key=token) as api:
        model = api.model(adapted.stdout.strip().splitlines()[-1])
    assert (model["support_size"], model["validation_size"]) == (4, 4)
    (validation / "class-9").mkdir()  # a class the support set does not have
    (validation / "class-9" / "0.png").write_bytes(image_bytes(0, 9))
    refused = runner.invoke(
        cli_app, ["adapt", str(folder), "--validation", str(validation), "--no-wait", *common]
    )
    assert refused.exit_code == 2 and "class-9" in refused.output, refused.output


def test_a_service_that_cannot_be_reached_is_named_with_fewshot_url(folder):
    nowhere = f"http://127.0.0.1:{free_port()}"
    runner = CliRunner()
    for command in (["adapt", str(folder)], ["report", "model_x"]):
        given = runner.invoke(cli_app, [*command, "--url", nowhere], env=WIDE)
        assert given.exit_code == 2
        assert f"cannot reach the service at {nowhere}" in given.output, given.output
        assert "FEWSHOT_URL" in given.output and "Traceback" not in given.output
    from_env = runner.invoke(cli_app, ["report", "model_x"], env={**WIDE, "FEWSHOT_URL": nowhere})
    assert f"cannot reach the service at {nowhere}" in from_env.output, from_env.output


@pytest.mark.redis
def test_predictions_say_yes_no_and_not_checked_like_the_console(server, token, folder):
    common = ["--url", server, "--api-key", token]
    runner = CliRunner()
    adapted = runner.invoke(
        cli_app, ["adapt", str(folder), "--steps", "2", "--until", "model", *common]
    )
    assert adapted.exit_code == 0, adapted.output
    model_id = adapted.stdout.strip().splitlines()[-1]
    query = str(folder / "query.png")
    plain = runner.invoke(cli_app, ["predict", model_id, query, *common], env=WIDE)
    assert plain.exit_code == 0, plain.output
    row = next(line for line in plain.stdout.splitlines() if "query.png" in line)
    assert "not checked" in row and "True" not in row and "False" not in row, row
    attacked = runner.invoke(
        cli_app, ["predict", model_id, query, "--robustness", *common], env=WIDE
    )
    row = next(line for line in attacked.stdout.splitlines() if "query.png" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[4] in ("yes", "no") and cells[5] in ("yes", "no", "unknown"), row


@pytest.mark.redis
def test_the_keys_mode_banner_curl_works_as_printed(server, token, tmp_path):
    banner = start_banner(server, workers=1, auth="keys")
    (command,) = [line.removeprefix("try: ") for line in banner if "curl" in line]
    assert '-H "Authorization: Bearer $FEWSHOT_API_KEY"' in command
    assert any("export FEWSHOT_API_KEY=" in line for line in banner)  # what to put there
    for name, cls in (("a1.png", 0), ("b1.png", 1)):
        (tmp_path / name).write_bytes(image_bytes(cls))
    env = {"FEWSHOT_API_KEY": token, "PATH": "/usr/bin:/bin"}
    sent = subprocess.run(
        ["bash", "-c", f"{command} -sS"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["job_id"].startswith("job_"), sent.stdout
    anonymous = subprocess.run(
        ["bash", "-c", f"{command} -sS"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert json.loads(anonymous.stdout)["error"]["code"] == "unauthorized"
    open_banner = " ".join(start_banner(server, workers=1, auth="open"))
    assert "Authorization" not in open_banner and shlex.split(open_banner)
