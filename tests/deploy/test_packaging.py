"""The two distributions' metadata: the license as an SPDX expression (PEP 639) with a
setuptools that reads it, so building them (`make run`'s installs) prints no deprecation
banner about the project's own pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = (ROOT, ROOT / "client")
PEP_639_SETUPTOOLS = (77, 0)  # the first setuptools that reads `license = "MIT"`


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


@pytest.mark.parametrize("folder", PROJECTS, ids=["server", "client"])
def test_the_license_is_an_spdx_expression_that_the_build_backend_reads(folder):
    document = pyproject(folder)
    assert document["project"]["license"] == "MIT"
    (setuptools,) = [r for r in document["build-system"]["requires"] if r.startswith("setuptools")]
    floor = re.fullmatch(r"setuptools>=(\d+)(?:\.(\d+))?", setuptools)
    assert floor, setuptools
    assert (int(floor[1]), int(floor[2] or 0)) >= PEP_639_SETUPTOOLS, setuptools
    classifiers = document["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639 forbids both


@pytest.mark.slow
@pytest.mark.parametrize("folder", PROJECTS, ids=["server", "client"])
def test_building_a_wheel_prints_no_deprecation_and_says_mit(folder, tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), "."],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    printed = built.stdout + built.stderr
    assert "Deprecat" not in printed and "deprecated" not in printed, [
        line for line in printed.splitlines() if "eprecat" in line
    ]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode()
    assert "License-Expression: MIT" in headers.splitlines()
