"""The layers, read from the source (ast), so a lazy import inside a function counts too.

Top level: arrows run only app/worker/cli -> common and app/worker/cli -> models. models/ is pure
ML (torch), common/ is the service's plumbing (settings, Redis, jobs); neither imports the other,
nor anything above them.

Inside models/: subpackages in one order (``MODELS_LAYERS``, lowest first); a module imports
only its own layer and the layers below it, a layer is reached from outside only through its
``__init__`` (what it names is what the rest of the project may use; tests may reach further
in), and no module imports itself back through another (no circle).
"""

from __future__ import annotations

import ast
import re
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
MODELS_LAYERS = ("core", "data", "attacks", "domain", "meta", "evaluation", "report", "service")
# packages whose imports of models/ must go through a layer's __init__ (tests and benchmarks
# may reach a module's internals)
PUBLIC_ONLY = ("app", "worker", "cli", "common", "models")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module ``path`` imports (``from a.b import c`` gives ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imported_packages(path: Path) -> set[str]:
    """The project's top-level packages that ``path`` imports, absolute imports only."""
    return {module.split(".")[0] for module in imported_modules(path)} & set(ALLOWED)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def models_layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "models" and len(parts) > 1 else None


def test_each_package_imports_only_the_layers_below_it():
    crossings = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in sorted(imported_packages(path) - allowed - {package}):
                crossings.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert crossings == []


def test_every_models_module_sits_in_a_layer():
    loose = [p.name for p in (ROOT / "models").glob("*.py") if p.name != "__init__.py"]
    folders = {p.name for p in (ROOT / "models").iterdir() if (p / "__init__.py").exists()}
    assert loose == []
    assert folders == set(MODELS_LAYERS)


def layer_crossings(path: Path) -> list[str]:
    """Imports of a models/ module that reach a higher layer of models/."""
    own = MODELS_LAYERS.index(models_layer_of(module_name(path)))
    return [
        f"{module_name(path)} imports {imported}"
        for imported in sorted(imported_modules(path))
        if (layer := models_layer_of(imported)) in MODELS_LAYERS
        and MODELS_LAYERS.index(layer) > own
    ]


def test_models_layers_import_only_their_own_and_lower_layers():
    crossings = [
        crossing
        for layer in MODELS_LAYERS
        for path in sorted((ROOT / "models" / layer).rglob("*.py"))
        for crossing in layer_crossings(path)
    ]
    assert crossings == []


def deep_imports(path: Path) -> list[str]:
    """Imports of another layer's module (``models.core.networks``) instead of its __init__."""
    own = models_layer_of(module_name(path))
    return [
        f"{module_name(path)} imports {imported}"
        for imported in sorted(imported_modules(path))
        if imported.startswith("models.")
        and len(imported.split(".")) > 2
        and models_layer_of(imported) != own
    ]


def test_a_layer_is_used_from_outside_through_its_init():
    found = [
        deep
        for package in PUBLIC_ONLY
        for path in sorted((ROOT / package).rglob("*.py"))
        for deep in deep_imports(path)
    ]
    assert found == []


def import_graph() -> dict[str, set[str]]:
    """models/ modules -> the models/ modules they import (a package stands for its __init__)."""
    paths = {module_name(p): p for p in (ROOT / "models").rglob("*.py")}
    return {
        name: {m for m in imported_modules(path) if m in paths and m != name}
        for name, path in paths.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles among modules, each as a path from a module back to itself.

    A package's ``__init__`` importing its own modules is not a circle of the code, so edges
    into one's own package ``__init__`` are the only ones the search leaves out."""
    found, done = [], set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            found.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            if not node.startswith(nxt + "."):
                visit(nxt, [*trail, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


def test_no_import_circle_in_models():
    assert circles(import_graph()) == []


def test_the_checks_see_what_they_forbid(tmp_path):
    module = tmp_path / "glue.py"
    module.write_text("def f():\n    from models.core.networks import FewShotNet\n    return 1\n")
    assert imported_packages(module) == {"models"}
    assert imported_modules(module) == {"models.core.networks"}
    graph = {"models.a.x": {"models.a.y"}, "models.a.y": {"models.b"}, "models.b": {"models.a.x"}}
    assert circles(graph) == [["models.a.x", "models.a.y", "models.b", "models.a.x"]]
    assert circles({"models.a": {"models.a.x"}, "models.a.x": {"models.b"}}) == []


def test_no_layer_exports_a_name_that_hides_one_of_its_modules():
    """``from models.meta import adapt`` must not mean a function in one place and a module in
    another: a name a layer exports is never the name of one of its modules."""
    hidden = []
    for layer in MODELS_LAYERS:
        folder = ROOT / "models" / layer
        modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
        tree = ast.parse((folder / "__init__.py").read_text())
        exported = {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        hidden += [f"models.{layer}.{name}" for name in sorted(exported & modules)]
    assert hidden == []


def test_the_architecture_page_names_the_layers_in_order_and_files_that_exist():
    page = (ROOT / "docs" / "architecture.md").read_text()
    named = [layer for layer in MODELS_LAYERS if f"`models/{layer}/`" in page]
    assert named == list(MODELS_LAYERS)
    positions = [page.index(f"`models/{layer}/`") for layer in MODELS_LAYERS]
    assert positions == sorted(positions)
    for layer in MODELS_LAYERS:  # the table's file names, row by row
        row = next(line for line in page.splitlines() if line.startswith(f"| `models/{layer}/`"))
        for name in re.findall(r"`([a-z_]+\.py)`", row):
            assert (ROOT / "models" / layer / name).exists(), f"models/{layer}/{name}"
    paths = set(re.findall(r"\b((?:app|common|worker|cli|models|tests)/[\w/]+\.py)\b", page))
    assert paths, "the page names no file"
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
