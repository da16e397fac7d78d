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
