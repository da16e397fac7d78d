"""Triage's layers point one way: the service (alerts/triage) imports neither the API, the web
pages nor the commands; the API does not import the pages or commands; the CLI twins use the
service, not the API. Checked on every import statement, local ones too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = {
    "alerts/triage": ("alerts.api", "alerts.web", "alerts.commands", "alerts.audit", "alerts.users"),
    "alerts/api/triage.py": ("alerts.web", "alerts.commands"),
    "alerts/commands/alerts.py": ("alerts.api", "alerts.web.triage_pages"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("place", sorted(RULES))
def test_triage_layers(place: str) -> None:
    target = REPO / place
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files
    offenders = {str(path.relative_to(REPO)): sorted(name for name in _imports(path)
                                                      if name.startswith(RULES[place]))
                 for path in files}
    assert not {path: names for path, names in offenders.items() if names}
