"""The keyed operator's own state handling, without a Flink runtime (fake state objects)."""

from __future__ import annotations

import json

from detectors.anomaly.config import StatefulSettings
from detectors.flink.stateful import StatefulFunction, stored_horizon, waiting_chunk
from detectors.stateful import StatefulPlan


class FakeValue:
    def __init__(self, value: str | None = None) -> None:
        self.stored = value

    def value(self) -> str | None:
        return self.stored

    def update(self, value: str) -> None:
        self.stored = value

    def clear(self) -> None:
        self.stored = None


class FakeList:
    def __init__(self, values: list[str]) -> None:
        self.stored = list(values)

    def get(self) -> list[str]:
        return list(self.stored)

    def add(self, value: str) -> None:
        self.stored.append(value)

    def update(self, values: list[str]) -> None:
        self.stored = list(values)

    def clear(self) -> None:
        self.stored = []


def item(moment: int, ident: str) -> dict[str, object]:
    return {"t": moment, "id": ident}


def test_stored_horizon_reads_both_envelope_spellings() -> None:
    assert stored_horizon(json.dumps({"h": 1234, "s": None})) == 1234
    assert stored_horizon(json.dumps({"h": -5, "s": {"v": 1}}, separators=(",", ":"))) == -5
    assert stored_horizon(json.dumps({"s": None, "h": 7})) == 7  # not ours: decoded in full


def test_a_timer_takes_due_items_in_arrival_order_and_keeps_untouched_chunks_as_they_are() -> None:
    function = StatefulFunction(StatefulPlan.build(StatefulSettings()), 0)
    later = waiting_chunk([item(5000, "e"), item(6000, "f")])
    function.legacy_pending = FakeValue(json.dumps([item(1000, "a")]))
    function.pending = FakeList([waiting_chunk([item(3000, "c"), item(2000, "b")]),
                                 waiting_chunk([item(1500, "d"), item(4000, "x")]), later])
    due, still_waiting = function._take_due(3000)
    assert [i["id"] for i in due] == ["a", "c", "b", "d"]
    assert still_waiting
    assert function.legacy_pending.value() is None  # taken over by the list
    assert function.pending.stored == [waiting_chunk([item(4000, "x")]), later]
    assert function._take_due(3000) == ([], True)
    due, still_waiting = function._take_due(6000)
    assert [i["id"] for i in due] == ["x", "e", "f"]
    assert not still_waiting and function.pending.stored == []


class FakeCounter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, by: int = 1) -> None:
        self.count += by


class FakeTimers:
    def __init__(self, watermark: int) -> None:
        self.watermark = watermark
        self.registered: set[int] = set()

    def current_watermark(self) -> int:
        return self.watermark

    def register_event_time_timer(self, moment: int) -> None:
        self.registered.add(moment)


class FakeContext:
    def __init__(self, key: str, watermark: int) -> None:
        self.key = key
        self.timers = FakeTimers(watermark)

    def timer_service(self) -> FakeTimers:
        return self.timers

    def get_current_key(self) -> str:
        return self.key


def _keyed_function(plan: StatefulPlan, level: int) -> StatefulFunction:
    function = StatefulFunction(plan, level)
    function.state, function.legacy_pending, function.pending = FakeValue(), FakeValue(), FakeList([])
    for name in ("items_counter", "late_counter", "dropped_counter", "behind_counter", "detections_counter"):
        setattr(function, name, FakeCounter())
    return function


def test_an_item_the_watermark_overtook_is_applied_at_once() -> None:
    """Seen in the job: a reactivated input's record reached the chained level after the other
    inputs had carried the watermark past it. Waiting for its timer would wait for the next
    watermark advance, which a quiet stream never brings; it is applied at once instead."""
    from alerts.settings import REPO_ROOT
    from detectors.sigma import SigmaEngine
    from detectors.stateful import build_plan

    from .job_scenario import T0, phase1, sso

    engine, _report = SigmaEngine.load([REPO_ROOT / "rules"], config_dir=REPO_ROOT / "config")
    plan = build_plan(engine, str(REPO_ROOT / "config"))
    failures = [event for event in phase1() if str(event["event"]["id"]).startswith("f")]
    failures.append(sso("f09", 170, "minh.le", "failure"))
    forwards = []
    for key_, items in _routed(plan, engine, failures).items():
        if key_.startswith("0|c|"):
            state = plan.new_state(key_)
            for one in items:
                state, _detections, chained = plan.step(key_, state, one)
                forwards += chained
    (key, forward), = forwards
    (success_key, success), = [(k, i) for k, i in _routed(plan, engine, [sso("s01", 300, "minh.le", "success")]).items()
                               if k.startswith("1|")]
    assert success_key == key
    success_item = success[0]
    function = _keyed_function(plan, 1)
    far_past = int(T0.timestamp() * 1000) + 395_000  # the watermark after a tick at 400 s
    assert not list(function.process_element(json.dumps({"key": key, "items": [forward], "ts": forward["t"]}),
                                             FakeContext(key, far_past)))
    out = list(function.process_element(json.dumps({"key": key, "items": [success_item], "ts": success_item["t"]}),
                                        FakeContext(key, far_past)))
    assert [json.loads(record)["rule"]["id"] for record in out] == ["5b0f1f0e-6f57-4b8e-9a51-2c5a8f0e7a11"]
    assert function.behind_counter.count == 2 and function.pending.stored == []


def _routed(plan: StatefulPlan, engine: object, events: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    grouped: dict[str, list[dict[str, object]]] = {}
    for event in events:
        for key, one in plan.route(event, engine.match(event)):  # type: ignore[attr-defined]
            grouped.setdefault(key, []).append(one)
    return grouped
