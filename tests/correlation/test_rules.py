"""The project's correlation rules (rules/correlation) against their test events.

Each ``<name>.yml`` has ``<name>.tests.yml`` beside it: positives must give the expected
number of hits of that rule, negatives none. Plain rules are checked with the Sigma engine's
``match``; correlation rules with the pure :class:`CorrelationEngine` (event time from the
events, windows closed by ``flush`` at the end), fed by the same Sigma engine; both through
``detectors.ruletools.testing``, the code of ``socflow rules test``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from detectors.ruletools.testing import RuleTestRun, run_rule_tests

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
CASES = sorted((RULES / "correlation").glob("*.tests.yml"))


@cache
def project_run() -> RuleTestRun:
    """``socflow rules test rules/`` (detectors.ruletools.testing), run once for the cases below."""
    run = run_rule_tests([RULES], config_dir=ROOT / "config")
    # Only this folder's rules are ours to check.
    failures = [f for f in run.load_failures if "/rules/correlation/" in str(f.path)]
    assert not failures, failures
    return run


def hits(case: Path) -> tuple[int, int]:
    """Hits of the case's rule on its positive and on its negative events."""
    result = next(r for r in project_run().results if r.tests == str(case))
    return result.positive_hits, result.negative_hits


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
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    found, negative = hits(case)
    expect = spec["expect"]
    if "exactly" in expect:
        assert found == expect["exactly"]
    else:
        assert found >= expect["at_least"]
    assert negative == 0
