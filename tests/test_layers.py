"""No import runs upward: models/ is the floor (tables, rules, vocabulary, calendar, masking);
handlers/ and schedules/ stand beside each other on it; bot/ composes them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What each package may import from the project.
ALLOWED = {
    "models": {"models"},
    "handlers": {"handlers", "models"},
    "schedules": {"schedules", "models"},
    "bot": {"bot", "handlers", "models", "schedules"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_runs_upward(package: str) -> None:
    wrong = []
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in ALLOWED and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from bot.app import App\nimport handlers.verbs\n", encoding="utf-8")
    assert [m for _, m in _imports(module)] == ["bot.app", "handlers.verbs"]
