"""The project's correlation rules (rules/correlation) against their test events.

Each ``<name>.yml`` has ``<name>.tests.yml`` beside it: positives must give the expected
number of hits of that rule, negatives none. Plain rules are checked with the Sigma engine's
``match``; correlation rules with the pure :class:`CorrelationEngine` (event time from the
events, windows closed by ``flush`` at the end), fed by the same Sigma engine.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.correlation import CorrelationEngine

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
CASES = sorted((RULES / "correlation").glob("*.tests.yml"))


@cache
def sigma_engine() -> Any:
    from detectors.sigma.engine import SigmaEngine

    engine, report = SigmaEngine.load([RULES], config_dir=ROOT / "config")
    # Only this folder's rules are ours to check (test files are not rules: skip their entries).
    failures = [f for f in report.failures
                if "/rules/correlation/" in str(f.path) and not str(f.path).endswith(".tests.yml")]
    assert not failures, failures
    return engine


def hits(rule_id: str, is_correlation: bool, events: list[dict[str, Any]]) -> int:
    engine = sigma_engine()
    if not is_correlation:
        return sum(1 for event in events for rule in engine.match(event) if rule.id == rule_id)
    correlations = CorrelationEngine.from_rules(engine.correlations, engine.rules, include_silenced=True)
    found = []
    for event in events:
        found.extend(correlations.process(event, engine.match(event)))
    found.extend(correlations.flush())
    return sum(1 for detection in found if detection.rule.id == rule_id)


def test_every_rule_has_tests() -> None:
    rules = {path.name[: -len(".yml")] for path in (RULES / "correlation").glob("*.yml")
             if not path.name.endswith(".tests.yml")}
    assert rules == {path.name[: -len(".tests.yml")] for path in CASES}


def test_every_correlation_type_is_exercised() -> None:
    kinds = set()
    for path in (RULES / "correlation").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "correlation" in data:
            kinds.add(data["correlation"]["type"])
            if data["correlation"].get("aliases"):
                kinds.add("aliases")
    assert kinds >= {"event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg",
                     "value_percentile", "aliases"}


@pytest.mark.parametrize("case", CASES, ids=[path.name for path in CASES])
def test_rule_against_its_events(case: Path) -> None:
    rule = yaml.safe_load(case.with_name(case.name.replace(".tests.yml", ".yml")).read_text(encoding="utf-8"))
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    is_correlation = "correlation" in rule
    found = hits(str(rule["id"]), is_correlation, spec["positive"])
    expect = spec["expect"]
    if "exactly" in expect:
        assert found == expect["exactly"]
    else:
        assert found >= expect["at_least"]
    assert hits(str(rule["id"]), is_correlation, spec.get("negative") or []) == 0
