"""Rules are data, tests are data: every project rule in rules/ with its own test events.

Beside each rule ``<name>.yml`` stands ``<name>.tests.yml`` with ``positive`` and ``negative``
events (in the socflow event shape; Windows events need only ``winlog``) and an expectation
``expect: {at_least: N}`` or ``{exactly: N}`` on the number of alerts of that rule over the
positive events. Negative events must give none. Plus rule-set-wide checks: every rule loads,
has a test file, a unique id, a level and ATT&CK tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.pipeline import BatchProcessor
from detectors.sigma import SigmaEngine
from ingest.assets import AssetInventory
from ingest.logsource import LogsourceTable
from ingest.schema import stable_id

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
TEST_FILES = sorted(RULES.rglob("*.tests.yml"))
RULE_FILES = sorted(path for path in RULES.rglob("*.yml") if not path.name.endswith(".tests.yml"))
LOGSOURCES = LogsourceTable.load(REPO / "config" / "logsources.yaml")
INVENTORY = AssetInventory.load(REPO / "config" / "assets.yaml")


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def _prepare(raw: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    """Fill what a collector would: timestamp, id, logsource for Windows, the node."""
    event = dict(raw)
    event.setdefault("@timestamp", f"2026-11-20T10:{index // 60:02d}:{index % 60:02d}.000Z")
    event.setdefault("event", {})
    event["event"] = {**event["event"], "id": event["event"].get("id") or stable_id("rule-test", name, index)}
    LOGSOURCES.tag(event)
    return INVENTORY.enrich(event)


def _is_correlation(rule_path: Path) -> bool:
    return any("correlation" in doc for doc in yaml.safe_load_all(rule_path.read_text(encoding="utf-8")) if doc)


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rule_fires_on_its_positive_events_only(test_file: Path) -> None:
    rule_path = test_file.with_name(test_file.name.replace(".tests.yml", ".yml"))
    assert rule_path.exists(), f"{test_file} has no rule beside it"
    if _is_correlation(rule_path):
        pytest.skip("correlation rules run through the correlation engine in tests/correlation")
    spec = _load_yaml(test_file)
    engine, report = SigmaEngine.load([rule_path])
    assert not report.failures, report.failures
    rule_id = _load_yaml(rule_path)["id"]
    processor = BatchProcessor(engine)

    def alerts(events: list[dict[str, Any]], tag: str) -> int:
        prepared = [_prepare(event, f"{test_file.name}:{tag}", index) for index, event in enumerate(events)]
        result = processor.process(prepared, source=str(test_file))
        assert not result.dead_letters, result.dead_letters
        return sum(1 for detection in result.detections if detection.rule.id == rule_id)

    positives = alerts(spec.get("positive") or [], "positive")
    expect = spec.get("expect") or {"at_least": 1}
    if "exactly" in expect:
        assert positives == expect["exactly"]
    else:
        assert positives >= expect["at_least"]
    assert alerts(spec.get("negative") or [], "negative") == 0


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
