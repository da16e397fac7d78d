"""ATT&CK coverage: techniques and tactics named by the enabled rules, from the rule tools'
coverage code (``detectors.ruletools.coverage``, the same as ``socflow rules coverage``), beside
the tactics the period's alerts carried (monitoring section)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts.reports.sections.base import Context, section


def build(ctx: Context, *, rule_paths: Sequence[Path]) -> dict[str, Any]:
    from detectors.ruletools.attack import AttackData
    from detectors.ruletools.coverage import coverage_of

    attack = AttackData.load()
    coverage, load = coverage_of(list(rule_paths), attack)
    techniques = coverage.by_technique()
    tactics: Counter[str] = Counter()
    for technique in techniques:
        for short in attack.techniques[technique].tactics:
            tactics[attack.tactics[short].name if short in attack.tactics else short] += 1
    known = sum(1 for t in attack.techniques.values() if not t.deprecated)
    return section(
        "ok" if techniques else "empty", [{"code": "detectors.ruletools.coverage.coverage_of",
                                           "paths": [p.name for p in rule_paths], "attack": attack.version}],
        attack_version=attack.version, rules=len(coverage.rules), techniques=len(techniques),
        techniques_known=known, tactics={name: tactics[name] for name in sorted(tactics)},
        technique_list=[{"id": tid, "name": attack.techniques[tid].name, "rules": len(rules)}
                        for tid, rules in sorted(techniques.items())],
        rules_not_loaded=len(getattr(load, "errors", []) or []))
