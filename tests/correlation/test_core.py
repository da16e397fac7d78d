"""The correlation core without Flink: every Sigma correlation type, aliases, chaining, event
time (out-of-order and late events), snapshots and deterministic ids."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.correlation import CorrelationEngine, CorrelationState
from detectors.correlation.spec import specs_from_sigma
from detectors.errors import RuleLoadError
from detectors.model import RuleInfo
from detectors.stateful import StatefulEngine, keyed_records

from . import scenario

BASE = """
title: Rule A
id: 00000000-0000-4000-8000-00000000000a
name: rule_a
logsource: {product: test}
detection: {sel: {x: a}, condition: sel}
---
title: Rule B
id: 00000000-0000-4000-8000-00000000000b
name: rule_b
logsource: {product: test}
detection: {sel: {x: b}, condition: sel}
---
title: Rule C
id: 00000000-0000-4000-8000-00000000000c
name: rule_c
logsource: {product: test}
detection: {sel: {x: c}, condition: sel}
"""
A = RuleInfo(id="00000000-0000-4000-8000-00000000000a", title="A", name="rule_a")
B = RuleInfo(id="00000000-0000-4000-8000-00000000000b", title="B", name="rule_b")
C = RuleInfo(id="00000000-0000-4000-8000-00000000000c", title="C", name="rule_c")
RULES = {"a": A, "b": B, "c": C}


def engine(correlation: str, **kwargs: Any) -> CorrelationEngine:
    correlations, rules = scenario.load_rules(correlation + "\n---\n" + BASE)
    return CorrelationEngine.from_rules(correlations, rules, **kwargs)


def corr(kind: str, rules: str, body: str, timespan: str = "1m", group: str = "[user.name]") -> str:
    return f"""
title: Test {kind}
id: 11111111-0000-4000-8000-000000000001
correlation:
    type: {kind}
    rules: {rules}
    group-by: {group}
    timespan: {timespan}
{body}
"""


def ev(ident: str, seconds: float, rule: str, user: str = "u1", **extra: Any) -> tuple[dict[str, Any], list[RuleInfo]]:
    event: dict[str, Any] = {"@timestamp": scenario.at(seconds), "event": {"id": ident}, "user": {"name": user}}
    event.update(extra)
    return event, [RULES[rule]]


def run(eng: CorrelationEngine, events: list[tuple[dict[str, Any], list[RuleInfo]]]) -> list[Any]:
    out = []
    for event, matched in events:
        out.extend(eng.process(event, matched))
    out.extend(eng.flush())
    return out


def test_event_count_fires_once_per_burst_and_names_its_events() -> None:
    eng = engine(corr("event_count", "[rule_a]", "    condition: {gte: 3}"))
    out = run(eng, [ev(f"e{i}", i * 10, "a") for i in range(7)])
    assert [d.event_ids for d in out] == [("e0", "e1", "e2"), ("e3", "e4", "e5")]
    assert all(d.kind == "correlation" and d.group == {"user.name": "u1"} for d in out)


def test_event_count_window_slides_and_groups_are_separate() -> None:
    eng = engine(corr("event_count", "[rule_a]", "    condition: {gte: 3}"))
    events = [ev("e0", 0, "a"), ev("e1", 50, "a"), ev("x0", 55, "a", user="u2"), ev("e2", 70, "a"),
              ev("e3", 100, "a")]
    out = run(eng, events)
    # e0 left the 1 m window before e2; e1, e2, e3 fit in (40 s, 100 s].
    assert [d.event_ids for d in out] == [("e1", "e2", "e3")]


def test_value_count_counts_distinct_values() -> None:
    eng = engine(corr("value_count", "[rule_a]", "    condition: {gte: 3, field: source.ip}"))
    events = [ev("e0", 0, "a", source={"ip": "1"}), ev("e1", 1, "a", source={"ip": "1"}),
              ev("e2", 2, "a", source={"ip": "2"}), ev("e3", 3, "a", source={"ip": "3"})]
    out = run(eng, events)
    assert [d.event_ids for d in out] == [("e0", "e1", "e2", "e3")]


def test_temporal_needs_all_rules_in_any_order() -> None:
    eng = engine(corr("temporal", "[rule_a, rule_b, rule_c]", ""))
    out = run(eng, [ev("c", 0, "c"), ev("a", 10, "a"), ev("b", 20, "b")])
    assert [d.event_ids for d in out] == [("c", "a", "b")]
    eng = engine(corr("temporal", "[rule_a, rule_b, rule_c]", ""))
    assert run(eng, [ev("c", 0, "c"), ev("a", 10, "a"), ev("b", 70, "b")]) == []


def test_temporal_ordered_needs_rule_order() -> None:
    eng = engine(corr("temporal_ordered", "[rule_a, rule_b]", ""))
    assert run(eng, [ev("b", 0, "b"), ev("a", 10, "a")]) == []
    eng = engine(corr("temporal_ordered", "[rule_a, rule_b]", ""))
    out = run(eng, [ev("b0", 0, "b"), ev("a", 10, "a"), ev("b", 20, "b")])
    assert [d.event_ids for d in out] == [("a", "b")]


def test_extended_temporal_condition() -> None:
    eng = engine(corr("temporal", "[rule_a, rule_b]", "    condition: rule_a and not rule_b").replace(
        "    rules: [rule_a, rule_b]\n", "    rules: [rule_a, rule_b]\n"))
    out = run(eng, [ev("a", 0, "a")])
    assert len(out) == 1


@pytest.mark.parametrize(
    ("kind", "condition", "fires"),
    [
        ("value_sum", "{gte: 100, field: bytes}", True),
        ("value_sum", "{gte: 101, field: bytes}", False),
        ("value_avg", "{gte: 25, field: bytes}", True),
        ("value_avg", "{gt: 25, field: bytes}", False),
        ("value_percentile", "{gte: 40, field: bytes, percentile: 95}", True),
        ("value_percentile", "{gte: 40, field: bytes, percentile: 50}", False),
        ("value_median", "{gte: 20, field: bytes}", True),
    ],
)
def test_value_aggregates(kind: str, condition: str, fires: bool) -> None:
    eng = engine(corr(kind, "[rule_a]", f"    condition: {condition}"))
    events = [ev(f"e{i}", i, "a", bytes=value) for i, value in enumerate([10, 20, 30, 40])]
    assert bool(run(eng, events)) is fires


def test_lt_condition_is_judged_when_the_window_closes() -> None:
    eng = engine(corr("event_count", "[rule_a]", "    condition: {lt: 3}"))
    events = [ev("e0", 0, "a"), ev("e1", 10, "a"), ev("x0", 0, "a", user="u2"), ev("x1", 1, "a", user="u2"),
              ev("x2", 2, "a", user="u2")]
    out = run(eng, events)
    assert [(d.group["user.name"], d.event_ids) for d in out] == [("u1", ("e0", "e1"))]


def test_aliases_join_different_fields() -> None:
    text = corr("temporal", "[rule_a, rule_b]", """    aliases:
        internal_ip:
            rule_a: destination.ip
            rule_b: source.ip
""", timespan="10s", group="[internal_ip]")
    eng = engine(text)
    out = run(eng, [ev("a", 0, "a", destination={"ip": "10.0.0.1"}), ev("b", 5, "b", source={"ip": "10.0.0.1"}),
                    ev("b2", 6, "b", source={"ip": "10.0.0.2"})])
    assert [(d.group, d.event_ids) for d in out] == [({"internal_ip": "10.0.0.1"}, ("a", "b"))]


def test_chained_correlation_and_generate_semantics() -> None:
    plan = scenario.build_plan()
    specs = {spec.rule.title: spec for spec in plan.correlations.specs}
    assert specs["Many failed logins"].generate is False  # referenced by a non-generating correlation
    assert specs["Many failed logins"].level == 0 and specs["Brute force then success"].level == 1
    eng = StatefulEngine(plan)
    out = []
    for event, matched in scenario.phase1() + scenario.phase2():
        out.extend(eng.process(event, matched))
    out.extend(eng.flush())
    titles = sorted(d.rule.title for d in out)
    assert "Many failed logins" not in titles
    chained = [d for d in out if d.rule.title == "Brute force then success"]
    assert [d.event_ids for d in chained] == [("a1", "a2", "a3", "a4", "a5", "a6")]


def test_unknown_reference_is_a_load_error() -> None:
    from sigma.correlations import SigmaCorrelationRule

    rule = SigmaCorrelationRule.from_yaml(corr("event_count", "[missing_rule]", "    condition: {gte: 3}"))
    with pytest.raises(RuleLoadError, match="missing_rule"):
        specs_from_sigma([rule], [RuleInfo(id="other", title="x")])


def test_ids_are_deterministic_across_runs() -> None:
    text = corr("event_count", "[rule_a]", "    condition: {gte: 2}")
    first = run(engine(text), [ev("e0", 0, "a"), ev("e1", 1, "a")])
    second = run(engine(text), [ev("e1", 1, "a"), ev("e0", 0, "a")])
    assert [d.id for d in first] == [d.id for d in second]


def _sequence() -> list[tuple[dict[str, Any], list[RuleInfo]]]:
    rng = random.Random(7)
    events = []
    for i in range(120):
        rule = rng.choice("aab")
        events.append(ev(f"e{i:03}", i * 3, rule, user=rng.choice(["u1", "u2", "u3"]), source={"ip": str(i % 4)}))
    return events


ALL_TYPES = [
    corr("event_count", "[rule_a]", "    condition: {gte: 4}"),
    corr("value_count", "[rule_a]", "    condition: {gte: 3, field: source.ip}"),
    corr("temporal_ordered", "[rule_a, rule_b]", ""),
    corr("event_count", "[rule_b]", "    condition: {lte: 2}"),
]


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_out_of_order_within_the_bound_gives_the_same_alerts(rng: random.Random) -> None:
    events = _sequence()
    shuffled = list(events)
    # Displace events by at most 4 s of event time (bound: 5 s): never late.
    keyed = sorted(shuffled, key=lambda pair: (int(pair[0]["event"]["id"][1:]) * 3 + rng.uniform(0, 4.0)))
    for text in ALL_TYPES:
        expected = [d.id for d in run(engine(text), events)]
        got = [d.id for d in run(engine(text), keyed)]
        assert sorted(got) == sorted(expected)
        assert expected


def test_late_events_are_counted_applied_or_dropped() -> None:
    eng = engine(corr("event_count", "[rule_a]", "    condition: {gte: 3}", timespan="10m"),
                 out_of_orderness_ms=1000, allowed_lateness_ms=30_000)
    out = []
    for event, matched in [ev("e0", 0, "a"), ev("e1", 100, "a"), ev("z", 200, "b")]:
        out.extend(eng.process(event, matched))
    assert eng.stats.late == 0
    out.extend(eng.process(*ev("late-ok", 90, "a")))  # behind u1's horizon (100 s), within 30 s
    assert eng.stats.late == 1 and eng.stats.late_dropped == 0
    assert [d.event_ids for d in out] == [("e0", "e1", "late-ok")]  # applied in arrival order
    out.extend(eng.process(*ev("late-old", 10, "a")))
    assert eng.stats.late == 2 and eng.stats.late_dropped == 1


def test_snapshot_restore_mid_sequence_gives_the_same_alerts() -> None:
    """Serialize every key's state halfway (what a checkpoint holds), rebuild, continue."""
    events = _sequence()
    for text in ALL_TYPES:
        expected = [d.id for d in run(engine(text), events)]
        first = engine(text)
        out = []
        for event, matched in events[:60]:
            out.extend(first.process(event, matched))
        second = engine(text)
        driver, old = second.driver, first.driver
        driver.states = {
            key: CorrelationState.from_snapshot(json.loads(json.dumps(state.to_snapshot())))
            for key, state in old.states.items()
        }
        driver.pending = defaultdict(list, json.loads(json.dumps(old.pending)))
        driver.horizons = dict(old.horizons)
        driver.registered = old.registered
        driver.timers = old.timers
        driver.max_time = old.max_time
        driver.watermarks = old.watermarks
        for event, matched in events[60:]:
            out.extend(second.process(event, matched))
        out.extend(second.flush())
        assert [d.id for d in out] == expected


def test_state_expires_so_memory_stays_bounded() -> None:
    eng = engine(corr("event_count", "[rule_a]", "    condition: {gte: 100}"))
    for i in range(50):
        eng.process(*ev(f"e{i}", i, "a", user=f"user{i}"))
    assert len(eng.driver.states) > 40
    eng.process(*ev("later", 3600, "a"))
    # Old keys expired on event-time timers (their horizons too); the newest item still waits.
    assert eng.driver.states == {} and eng.driver.horizons == {}
    assert len(eng.driver.pending) == 1


def test_plan_pickles_into_flink_operators() -> None:
    """Flink ships the plan to its operators with cloudpickle, after it has been used."""
    import cloudpickle

    plan = scenario.build_plan()
    for event, matched in scenario.phase1():
        plan.route(event, matched)
    copy = cloudpickle.loads(cloudpickle.dumps(plan))
    event, matched = scenario.phase1()[0]
    assert copy.route(event, matched) == plan.route(event, matched)


def test_keyed_records_carry_the_batch_end_on_their_last_record() -> None:
    """Records are stamped with their earliest item time (nothing of the batch becomes late),
    except the last, which carries the batch's latest time so the watermark reaches it."""
    grouped = {"0|c|x|a": [{"t": 5, "id": "a1"}, {"t": 90, "id": "a2"}], "0|c|x|b": [{"t": 10, "id": "b1"}]}
    records = [json.loads(text) for text in keyed_records(grouped)]
    assert [(record["key"], record["ts"]) for record in records] == [("0|c|x|a", 5), ("0|c|x|b", 90)]


def test_late_forward_of_a_chain_is_applied_and_ordered_by_event_time() -> None:
    """A chained detection reaching the next level after that level moved past it (in Flink,
    when the stage wakes from idleness, the direct path may come first) is applied, not
    dropped, and temporal_ordered judges the order by event time, not arrival."""
    eng = StatefulEngine(scenario.build_plan())
    out = eng.process(*scenario.auth("ok", 200, "erin", "10.0.0.9", "success"))
    out += eng.process(*scenario.conn("tick", 300, "10.0.0.7", "10.0.1.8", 443))  # level 1 passes 200 s
    for number in range(5):  # erin's failures come after: her count fires, its forward is late
        out += eng.process(*scenario.auth(f"x{number}", 10 * number, "erin", "10.0.0.9", "failure"))
    out += eng.flush()
    chained = [d for d in out if d.rule.title == "Brute force then success"]
    assert [d.event_ids for d in chained] == [("x0", "x1", "x2", "x3", "x4", "ok")]
    assert eng.stats.late > eng.stats.late_dropped  # the forward: late, applied (detector items: dropped)


def test_snapshot_rows_from_before_the_node_field_still_read() -> None:
    """Checkpoints written before rows kept the event's node hold six-field rows."""
    old = {"v": 1, "i": [[1000, "e1", "r1", None, "2026-11-20T08:00:01.000Z", None]], "l": 1000}
    state = CorrelationState.from_snapshot(old)
    assert state.items == [[1000, "e1", "r1", None, "2026-11-20T08:00:01.000Z", None, None]]
    assert CorrelationState.from_snapshot(state.to_snapshot()).items == state.items
