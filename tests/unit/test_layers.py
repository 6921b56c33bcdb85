"""Imports run one way (DESIGN.md): accounts, jobs <- annotations <- training <- inference; frontend may use all;
the demo-only code (demo/) may use all and no runtime app imports it.

Read from the source (every import statement, inside functions too), so a lower layer reaching up to dodge a
circle fails here, not only one imported at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "jobs", "annotations", "training", "inference", "frontend", "demo")
# What each app may import from the other apps.
ALLOWED = {
    "accounts": set(),
    "jobs": {"accounts"},
    "annotations": {"accounts", "jobs"},
    "training": {"accounts", "jobs", "annotations"},
    "inference": {"accounts", "jobs", "annotations", "training"},
    "frontend": {"accounts", "jobs", "annotations", "training", "inference"},
    "demo": {"accounts", "jobs", "annotations", "training", "inference", "frontend"},
}


def _imported_apps(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found.update((name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in APPS)
    return found


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_only_the_layers_below_it(app):
    wrong = []
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Django writes the dependencies of a migration itself
        for imported, line in sorted(_imported_apps(path)):
            if imported != app and imported not in ALLOWED[app]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from inference.models import Prediction\n    import training.networks\n")
    assert _imported_apps(module) == {("inference", 2), ("training", 3)}
