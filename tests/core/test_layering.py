"""Dependencies point one way: ingest <- detectors <- alerts; pyflink only in detectors/flink.

Checked on the source (every import statement, also the local ones inside functions), so a
shortcut import anywhere in a package fails the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "ingest": {"detectors", "alerts", "deploy", "pyflink"},
    "detectors": {"alerts", "deploy"},
    "deploy": {"ingest", "detectors", "alerts"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (REPO / package).rglob("*.py")
        if _imports(path) & FORBIDDEN[package]
    }
    assert not offenders, offenders


def test_pyflink_only_in_the_flink_shell() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in ("ingest", "detectors", "alerts")
        for path in (REPO / package).rglob("*.py")
        if "pyflink" in _imports(path) and "detectors/flink" not in path.as_posix()
    ]
    assert not offenders, offenders
