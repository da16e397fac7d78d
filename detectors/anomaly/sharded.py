"""Many groups of one detector behind a few keys: for detectors whose groups are many per batch.

A volume detector has a group per node and per agency (hundreds), and a batch of 200 events
from a busy collector touches dozens of them. One keyed record per group and batch then costs
more in Flink's keyed state than the whole Sigma stage (measured: ~23 records per batch on
the pipeline bench). Sharding hashes each group to one of ``SHARDS`` keys
(``"0|a|<detector>|#<shard>"``), the item carrying its group in ``"g"``; the key's state holds
the inner detector's state per group. Results are the inner detector's: it sees the same
items in the same order per group, and its timers are honoured (a group's ``on_timer`` runs
at the first firing of its shard at or after the group's own ``next_timer``, which for the
volume detectors only changes when a bucket's detection is emitted, not what it says).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly.detectors import Detector, Item, _check_version
from detectors.model import Detection

SHARDS = 8  # keys per sharded detector: enough to spread over parallel tasks, few per batch
SHARD_PREFIX = "#"


def shard_of(group: str) -> str:
    """The shard key part of a group: a stable hash (Python's hash differs per process)."""
    return f"{SHARD_PREFIX}{zlib.crc32(group.encode('utf-8')) % SHARDS}"


@dataclass(slots=True)
class ShardState:
    """The inner detector's state per group of the shard."""

    groups: dict[str, Any] = field(default_factory=dict)

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": 1, "g": {group: state.to_snapshot() for group, state in sorted(self.groups.items())}}


class Sharded(Detector[ShardState]):
    """An inner detector run per group inside one shard key's state."""

    state_type = ShardState

    def __init__(self, inner: Detector[Any]) -> None:
        super().__init__(inner.settings, inner.rule)
        self.inner = inner

    def new_state(self) -> ShardState:
        return ShardState()

    def step(self, state: ShardState, item: Item, group: str) -> tuple[ShardState, list[Detection]]:
        name = str(item["g"])
        inner = state.groups.get(name)
        inner, detections = self.inner.step(self.inner.new_state() if inner is None else inner, item, name)
        state.groups[name] = inner
        return state, detections

    def next_timer(self, state: ShardState) -> int | None:
        upcoming = [moment for inner in state.groups.values()
                    if (moment := self.inner.next_timer(inner)) is not None]
        return min(upcoming) if upcoming else None

    def on_timer(self, state: ShardState, now: int, group: str) -> tuple[ShardState | None, list[Detection]]:
        out: list[Detection] = []
        for name in sorted(state.groups):
            inner = state.groups[name]
            due = self.inner.next_timer(inner)
            if due is None or due > now:
                continue
            kept, detections = self.inner.on_timer(inner, now, name)
            out.extend(detections)
            if kept is None:
                del state.groups[name]
            else:
                state.groups[name] = kept
        return (state if state.groups else None), out

    def decode(self, snap: Mapping[str, Any]) -> ShardState:
        _check_version(snap, "shard")
        return ShardState({group: self.inner.decode(inner) for group, inner in snap["g"].items()})
