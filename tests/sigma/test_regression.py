"""SigmaHQ's own regression tests: each named rule fires at least ``match_count`` times on its
EVTX file and on the JSON twin of that file (``regression_data/**/info.yml``)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.sigma import SigmaEngine
from detectors.sigma.events import iter_windows_file
from ingest.logsource import LogsourceTable
from tests.sigma.conftest import CONFIG_DIR, corpora_root

RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance",
                "rules-dfir", "rules-placeholder")
_ID = re.compile(r"^id:\s*['\"]?([0-9a-fA-F-]{36})", re.M)


def _cases() -> list[Any]:
    root = corpora_root() / "sigma" / "regression_data"
    if not root.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    cases = []
    for info in sorted(root.rglob("info.yml")):
        data = yaml.safe_load(info.read_text(encoding="utf-8"))
        rule_id = data["rule_metadata"][0]["id"]
        for test in data.get("regression_tests_info") or ():
            cases.append(pytest.param((rule_id, test["path"], int(test.get("match_count", 1))),
                                      id=f"{info.parent.name}"))
    return cases


@cache
def _rule_paths() -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for folder in RULE_FOLDERS:
        for path in (corpora_root() / "sigma" / folder).rglob("*.yml"):
            found = _ID.search(path.read_text(encoding="utf-8"))
            if found:
                paths[found.group(1).lower()] = path
    return paths


@cache
def _table() -> LogsourceTable:
    return LogsourceTable.load(CONFIG_DIR / "logsources.yaml")


@pytest.mark.corpus
@pytest.mark.parametrize("case", _cases())
def test_regression(case: tuple[str, str, int] | None) -> None:
    if case is None:
        pytest.skip(f"SigmaHQ corpus not found under {corpora_root()} (set SOCFLOW_CORPORA)")
    rule_id, relative, match_count = case
    rule_path = _rule_paths().get(rule_id.lower())
    assert rule_path is not None, f"rule {rule_id} not found in the corpus"
    engine, report = SigmaEngine.load([rule_path], config_dir=CONFIG_DIR)
    assert report.ok, report.render()
    evtx = corpora_root() / "sigma" / relative
    for source in (evtx, evtx.with_suffix(".json")):
        hits = sum(
            1 for _, event in iter_windows_file(source, table=_table())
            if any(rule.id == rule_id for rule in engine.match(event))
        )
        assert hits >= match_count, f"{source.name}: {hits} matches, expected at least {match_count}"
