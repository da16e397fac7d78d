"""Rules are data, tests are data: every project rule in rules/ with its own test events.

Beside each rule ``<name>.yml`` stands ``<name>.tests.yml`` with ``positive`` and ``negative``
events (in the socflow event shape; Windows events need only ``winlog``) and an expectation
``expect: {at_least: N}`` or ``{exactly: N}`` on the number of alerts of that rule over the
positive events. Negative events must give none. The cases run through
``detectors.ruletools.testing``, the code of ``socflow rules test``. Plus rule-set-wide checks: every rule loads,
has a test file, a unique id, a level and ATT&CK tags.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.ruletools.testing import RuleTestRun, rule_beside, run_rule_tests
from detectors.sigma import SigmaEngine

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
TEST_FILES = sorted(RULES.rglob("*.tests.yml"))
RULE_FILES = sorted(path for path in RULES.rglob("*.yml") if not path.name.endswith(".tests.yml"))


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@cache
def _project_run() -> RuleTestRun:
    """``socflow rules test rules/``: the same code, run once for every case below."""
    return run_rule_tests([RULES], config_dir=REPO / "config")


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rule_fires_on_its_positive_events_only(test_file: Path) -> None:
    rule_path = rule_beside(test_file)
    assert rule_path.exists(), f"{test_file} has no rule beside it"
    result = next(r for r in _project_run().results if r.tests == str(test_file))
    assert result.rule_id == str(_load_yaml(rule_path)["id"])
    assert result.passed, f"{result.error}; first failing event: {result.first_failing}"
    kind, count = result.expect.split()
    if kind == "exactly":
        assert result.positive_hits == int(count)
    else:
        assert result.positive_hits >= int(count)
    assert result.negative_hits == 0


def test_every_project_rule_loads_and_is_tested() -> None:
    _engine, report = SigmaEngine.load([RULES])
    assert not report.failures, "\n".join(f"{f.path}: {f.reason}" for f in report.failures)
    untested = [p for p in RULE_FILES if not p.with_name(p.stem + ".tests.yml").exists()]
    assert not untested, f"rules without test events: {untested}"


def _correlation_references() -> set[str]:
    names: set[str] = set()
    for path in RULE_FILES:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and "correlation" in doc:
                names.update(str(rule) for rule in doc["correlation"].get("rules") or [])
    return names


def test_rule_set_conventions() -> None:
    seen: dict[str, Path] = {}
    feeds_correlations = _correlation_references()
    for path in RULE_FILES:
        docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        assert len(docs) == 1, f"{path}: one rule per file"
        rule = docs[0]
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", rule["id"]), path
        assert rule["id"] not in seen, f"{path} reuses the id of {seen.get(rule['id'])}"
        seen[rule["id"]] = path
        assert path.stem == path.stem.lower() and " " not in path.stem, f"{path}: lower-case file names"
        if "correlation" not in rule:
            assert rule.get("level") in {"informational", "low", "medium", "high", "critical"}, path
            tags = rule.get("tags") or []
            if rule.get("name") in feeds_correlations or rule["id"] in feeds_correlations:
                continue  # building blocks of a correlation carry the technique on the correlation
            assert any(re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", tag) for tag in tags), f"{path}: ATT&CK technique tag"
