"""The layers: arrows run only app/worker/cli -> common and app/worker/cli -> models.

models/ is pure ML (torch), common/ is the service's plumbing (settings, Redis, jobs); neither
imports the other, nor anything above them. Read from the source (ast), so a lazy import
inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "models": set(),
    "common": set(),
    "client": set(),
    "app": {"common", "models"},
    "worker": {"common", "models"},
    "cli": {"common", "models"},
}


def imported_packages(path: Path) -> set[str]:
    """The project's top-level packages that ``path`` imports, absolute imports only."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


def test_each_package_imports_only_the_layers_below_it():
    crossings = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in sorted(imported_packages(path) - allowed - {package}):
                crossings.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert crossings == []


def test_the_check_sees_an_import_that_crosses(tmp_path):
    module = tmp_path / "glue.py"
    module.write_text("def f():\n    from models.networks import FewShotNet\n    return 1\n")
    assert imported_packages(module) == {"models"}
