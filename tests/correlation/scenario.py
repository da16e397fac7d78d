"""A deterministic event sequence for the stateful core, over a small rule set of its own.

Phase 2 follows phase 1. Together they have out-of-order events within the bound, a late
event that is still applied (it completes a chained correlation whose earlier events are in
phase 1), a late event beyond the allowed lateness (dropped and counted) and a final
far-future event that moves the watermark so every window closes. The whole job on Flink
runs the project-rule sequences of ``job_scenario`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule

from detectors.anomaly.config import EventTimeSettings, StatefulSettings
from detectors.model import RuleInfo
from detectors.stateful import StatefulPlan
from ingest.schema import format_timestamp

T0 = datetime(2026, 1, 1, tzinfo=UTC)

RULES_YAML = """
title: Brute force then success
id: 6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a01
correlation:
    type: temporal_ordered
    rules:
        - many_failed_logins
        - successful_login
    group-by:
        - user.name
    timespan: 10m
level: high
---
title: Many failed logins
id: 6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a02
name: many_failed_logins
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - user.name
    timespan: 10m
    condition:
        gte: 5
---
title: Failed logins over several accounts from one source
id: 6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a03
correlation:
    type: value_count
    rules:
        - failed_login
    group-by:
        - source.ip
    timespan: 5m
    condition:
        field: user.name
        gte: 3
---
title: Failed login
id: 6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a10
name: failed_login
logsource: {product: linux, service: auth}
detection:
    selection:
        event.outcome: failure
    condition: selection
---
title: Successful login
id: 6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a11
name: successful_login
logsource: {product: linux, service: auth}
detection:
    selection:
        event.outcome: success
    condition: selection
"""

FAILED = RuleInfo(id="6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a10", title="Failed login", name="failed_login",
                  generate=False)
SUCCESS = RuleInfo(id="6f3e0c59-8a51-4f57-9a59-3b1d7f3f6a11", title="Successful login",
                   name="successful_login", generate=False)


def load_rules(text: str = RULES_YAML) -> tuple[list[Any], list[Any]]:
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    correlations = [rule for rule in collection if isinstance(rule, SigmaCorrelationRule)]
    rules = [rule for rule in collection if not isinstance(rule, SigmaCorrelationRule)]
    return correlations, rules


def settings() -> StatefulSettings:
    return StatefulSettings(event_time=EventTimeSettings(out_of_orderness_s=5, allowed_lateness_s=60, idle_source_s=1))


def build_plan() -> StatefulPlan:
    correlations, rules = load_rules()
    return StatefulPlan.build(settings(), correlations, rules)


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def auth(ident: str, seconds: float, user: str, src: str, outcome: str) -> tuple[dict[str, Any], list[RuleInfo]]:
    event = {
        "@timestamp": at(seconds),
        "event": {"id": ident, "category": ["authentication"], "outcome": outcome},
        "user": {"name": user},
        "source": {"ip": src},
        "socflow": {"node": {"id": "n-dc1", "agency": "a-so-tttt"}},
    }
    return event, [FAILED if outcome == "failure" else SUCCESS]


def conn(ident: str, seconds: float, src: str, dst: str, port: int) -> tuple[dict[str, Any], list[RuleInfo]]:
    event = {
        "@timestamp": at(seconds),
        "event": {"id": ident, "category": ["network"]},
        "source": {"ip": src},
        "destination": {"ip": dst, "port": port},
        "socflow": {"node": {"id": "n-fw1", "agency": "a-so-tttt"}},
    }
    return event, []


def phase1() -> list[tuple[dict[str, Any], list[RuleInfo]]]:
    events = [
        auth("a1", 0, "alice", "10.0.0.66", "failure"),
        auth("a3", 20, "alice", "10.0.0.66", "failure"),  # out of order, within the bound
        auth("a2", 10, "alice", "10.0.0.66", "failure"),
        auth("b1", 15, "bob", "10.0.0.66", "failure"),
        auth("c1", 25, "carol", "10.0.0.66", "failure"),  # third account from .66: value_count
        auth("a4", 30, "alice", "10.0.0.66", "failure"),  # alice: 4 of 5 failures before the restart
    ]
    events += [conn(f"p{port}", 40 + port - 1000, "10.0.0.99", "10.0.1.5", port) for port in range(1000, 1025)]
    events += [conn(f"f{i}", 70 + i * 5, "10.0.0.7", "10.0.1.8", 443) for i in range(11)]  # moves time to 120 s
    return events


def phase2() -> list[tuple[dict[str, Any], list[RuleInfo]]]:
    return [
        auth("a5", 25, "alice", "10.0.0.66", "failure"),  # late, within lateness: completes the count
        conn("late-drop", 3, "10.0.0.99", "10.0.1.5", 2000),  # late beyond the allowed lateness
        auth("a6", 130, "alice", "10.0.0.66", "success"),  # success after many failures: chained
        auth("d2", 140, "dave", "10.0.0.70", "failure"),
        auth("d1", 138, "dave", "10.0.0.70", "failure"),  # out of order, within the bound
        conn("end", 1000, "10.0.0.7", "10.0.1.8", 443),  # moves the watermark past every window
    ]

