"""Deployment files: what must hold in docker-compose.yml, the Dockerfile and .env.example.

No Docker engine runs here, so these are checked statically: the compose file by Debian's
``docker-compose config`` (its compose-spec schema) and by the invariants below, the Dockerfile
by hadolint.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
IN_CI = os.environ.get("CI") == "true"
CONTAINER_FIXED = {"host", "port", "worker_alive_file"}  # set by the image or the port mapping


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_name(field: str) -> str:
    return {"redis_url": "REDIS_URL", "port": "PORT"}.get(field, f"FEWSHOT_{field.upper()}")


def module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], command
    return command[2]


def test_the_worker_reserves_a_gpu_and_scales(compose):
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert worker["build"]["args"]["TORCH_VARIANT"].startswith("${TORCH_CUDA_VARIANT")
    for name in ("worker", "worker-cpu"):  # --scale needs no fixed name and no host port
        assert "container_name" not in compose["services"][name]
        assert "ports" not in compose["services"][name]
    assert "deploy" not in compose["services"]["worker-cpu"]
    assert compose["services"]["worker-cpu"]["profiles"] == ["cpu"]


def test_redis_persists_on_a_named_volume(compose):
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]


def test_every_service_has_a_healthcheck_and_restarts(compose):
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert service["restart"] == "unless-stopped", name
    for name in ("api", "worker", "worker-cpu"):
        depends = compose["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
    assert "app.probe" in compose["services"]["api"]["healthcheck"]["test"]


def test_commands_exist_in_the_package(compose):
    for name in ("api", "worker", "worker-cpu"):
        service = compose["services"][name]
        for command in (service["command"], service["healthcheck"]["test"][1:]):
            module = module_of(command)
            spec = importlib.util.find_spec(module)
            assert spec is not None, module
            if spec.submodule_search_locations:  # a package: it needs a __main__
                assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    assert re.search(r'CMD \["python", "-m", "app"\]', (ROOT / "Dockerfile").read_text())


def test_every_setting_is_configurable_and_documented(compose):
    expected = {env_name(field) for field in Settings.model_fields} - {
        env_name(field) for field in CONTAINER_FIXED
    }
    for name in ("api", "worker", "worker-cpu"):
        assert set(compose["services"][name]["environment"]) == expected, name
    example = {
        line.split("=")[0].lstrip("# ")
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert expected <= example
    table = (ROOT / "docs" / "operations.md").read_text()  # the settings table
    for field in Settings.model_fields:
        assert f"`{env_name(field)}`" in table, f"{env_name(field)} missing from docs/operations.md"


def test_empty_variables_mean_the_defaults(compose, monkeypatch):
    for name, value in compose["services"]["api"]["environment"].items():
        if name != "REDIS_URL":
            monkeypatch.setenv(name, "")
        assert value.startswith("${") or name == "REDIS_URL"
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    built = Settings().model_dump()
    assert {k: v for k, v in built.items() if k != "redis_url"} == {
        k: v for k, v in defaults.items() if k != "redis_url"
    }


def test_dockerfile_is_multi_stage_non_root_and_pins_torch():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert '"torch==2.13.0"' in text and "ARG TORCH_VARIANT=cpu" in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*"  # a whitelist: no .venv, .git, tests or data in the context


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def test_hadolint_passes():
    result = subprocess.run(
        [tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_docker_compose_config_validates(profile):
    result = subprocess.run(
        [tool("docker-compose"), "--env-file", ".env.example", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COMPOSE_PROFILES": profile},
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["services"]["redis"]["image"].startswith("redis:7")


def test_the_api_and_every_worker_mount_the_one_artifacts_volume(compose):
    location = compose["x-settings"]["FEWSHOT_ARTIFACTS_URL"].split(":-")[1].rstrip("}")
    assert "artifacts" in compose["volumes"]
    for name in ("api", "worker", "worker-cpu"):
        assert f"artifacts:{location}" in compose["services"][name]["volumes"], name
