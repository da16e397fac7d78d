"""The keyed operator's own state handling, without a Flink runtime (fake state objects)."""

from __future__ import annotations

import json
from typing import Any

from detectors.anomaly.config import StatefulSettings
from detectors.flink.stateful import StatefulFunction, stored_horizon
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
    def __init__(self) -> None:
        self.stored: list[str] = []

    def get(self) -> list[str]:
        return list(self.stored)

    def add(self, value: str) -> None:
        self.stored.append(value)

    def update(self, values: list[str]) -> None:
        self.stored = list(values)

    def clear(self) -> None:
        self.stored = []


def test_stored_horizon_reads_both_envelope_spellings() -> None:
    assert stored_horizon(json.dumps({"h": 1234, "s": None})) == 1234
    assert stored_horizon(json.dumps({"h": -5, "s": {"v": 1}}, separators=(",", ":"))) == -5
    assert stored_horizon(json.dumps({"s": None, "h": 7})) == 7  # not ours: decoded in full


def test_items_waiting_in_the_legacy_value_state_come_first_and_move_to_the_list() -> None:
    function = StatefulFunction(StatefulPlan.build(StatefulSettings()), 0)
    function.legacy_pending = FakeValue(json.dumps([{"t": 1, "id": "a"}]))
    function.pending = FakeList()
    function.pending.add(json.dumps([{"t": 3, "id": "c"}]))
    function.pending.add(json.dumps([{"t": 2, "id": "b"}]))
    waiting: list[dict[str, Any]] = function._waiting()
    assert [item["id"] for item in waiting] == ["a", "c", "b"]
    assert function.legacy_pending.value() is None
    assert [item["id"] for item in function._waiting()] == ["a", "c", "b"]
