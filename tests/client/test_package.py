"""The client is its own distribution (client/, ``robust-fewshot-client``, module
``fewshot_client``): httpx only, no torch and no server code; the server ships no ``client``
module and registers the client's commands instead of its own copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import fewshot_client
import pytest
import typer
from fewshot_client import cli as client_cli
from setuptools import find_namespace_packages

from cli.main import app as server_app

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
HEAVY = {"torch", "fastapi", "redis", "app", "models", "common", "worker", "cli", "client"}
# what `pip install ./client` may bring: httpx and its own dependencies, nothing else
HTTPX_ONLY = {"httpx", "httpcore", "anyio", "idna", "certifi", "h11", "sniffio"}
HTTPX_ONLY |= {"typing-extensions", "exceptiongroup", "robust-fewshot-client", "pip", "setuptools"}


def heavy_modules_after(code: str, python: str = sys.executable) -> set[str]:
    """The heavy top-level modules loaded by ``code`` in a fresh interpreter, run from an
    empty folder so that the repository root is not on its path."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [python, "-c", probe], cwd="/", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in loaded} & HEAVY


def test_the_library_and_its_commands_import_no_torch_nor_server_code():
    assert heavy_modules_after("import fewshot_client") == set()
    code = "import fewshot_client.cli, fewshot_client.__main__, fewshot_client.cli.base_models"
    assert heavy_modules_after(code) == set()


def test_the_heavy_import_check_sees_a_heavy_import():
    assert heavy_modules_after("import fewshot_client, redis") == {"redis"}


def test_without_the_cli_extra_the_command_says_how_to_get_it():
    code = "import sys; sys.modules['typer'] = None; import fewshot_client.__main__ as m; m.main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "robust-fewshot-client[cli]" in done.stderr


def commands(app: typer.Typer) -> dict[str, object]:
    """Name -> the function registered (commands) or the Typer app added (groups)."""
    found: dict[str, object] = {c.name or "": c.callback for c in app.registered_commands}
    found |= {g.name or "": g.typer_instance for g in app.registered_groups}
    return found


def test_the_server_registers_the_client_commands_one_implementation():
    client = commands(client_cli.app)
    assert set(client) == {"adapt", "predict", "report", "base-models"}
    server = commands(server_app)
    for name, registered in client.items():
        assert server[name] is registered, name
    assert {c.callback.__module__ for c in client_cli.app.registered_commands} == {
        "fewshot_client.cli.remote"
    }
    base_models = commands(client_cli.base_models_app)
    assert set(base_models) == {"create", "list", "delete"}


def test_the_server_distribution_ships_no_client_module():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = find_namespace_packages(str(ROOT), **config["packages"]["find"])
    top_level = {name.split(".")[0] for name in shipped}
    assert top_level == {"app", "cli", "common", "models", "worker"}, top_level


def test_the_client_has_the_servers_version_and_the_server_depends_on_it():
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert fewshot_client.__version__ == server["version"]
    assert client["name"] == "robust-fewshot-client" and client["dependencies"] == ["httpx>=0.27"]
    assert f"robust-fewshot-client[cli]=={server['version']}" in server["dependencies"]


@pytest.mark.slow
@pytest.mark.redis
def test_the_client_installs_alone_and_runs_without_torch(tmp_path, server, token, folder):
    """pip install ./client into a fresh venv (httpx may come from the index): it imports,
    holds no torch; with [cli], fewshot-client adapts and predicts on the real server."""
    source = tmp_path / "client-src"  # a copy: building in place would leave client/build
    ignored = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(CLIENT, source, ignore=ignored)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, pip = str(env_dir / "bin" / "python"), [str(env_dir / "bin" / "python"), "-m", "pip"]

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    installed = run(*pip, "install", "--quiet", str(source))
    assert installed.returncode == 0, installed.stderr
    listed = json.loads(run(*pip, "list", "--format", "json").stdout)
    assert {p["name"].lower().replace("_", "-") for p in listed} <= HTTPX_ONLY, listed
    assert heavy_modules_after("import fewshot_client", python) == set()
    no_torch = run(python, "-c", "import importlib.util as u; print(u.find_spec('torch'))")
    assert no_torch.stdout.strip() == "None"
    command = str(env_dir / "bin" / "fewshot-client")
    assert "robust-fewshot-client[cli]" in run(command).stderr

    assert run(*pip, "install", "--quiet", f"{source}[cli]").returncode == 0
    common = ["--url", server, "--api-key", token]
    adapted = run(command, "adapt", str(folder), "--steps", "2", *common)
    assert adapted.returncode == 0, adapted.stderr
    model_id = adapted.stdout.strip().splitlines()[-1]
    predicted = run(command, "predict", model_id, str(folder / "query.png"), "--json", *common)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["label"] in {"class-0", "class-1"}
