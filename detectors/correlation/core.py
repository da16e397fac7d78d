"""Evaluation of one correlation rule for one group: a state dataclass and a pure ``step``.

Items reach ``step`` in event-time order (the driver — :class:`detectors.correlation.engine.EventTimeDriver`
in replay, a keyed Flink function in production — buffers them until the watermark passes),
so a sequence gives the same alerts whatever order it arrived in.

Semantics, per group of ``group-by`` values:

- event_count, value_count and value_sum with gt / gte (adding events only moves them towards
  the condition) are evaluated over a sliding window ``(t - timespan, t]`` after every item
  and fire as soon as they hold; the window is then emptied, so a burst gives one alert and
  the next alert needs a fresh set of events.
- value_avg, value_percentile, value_median and every lt / lte / eq / neq condition can only
  be judged on a complete window: a window opens at the first item of the group and is
  evaluated when event time reaches ``first + timespan`` (one alert per window at most).
- temporal: the distinct referenced rules seen in the window are counted (or the extended
  boolean condition evaluated over them); temporal_ordered additionally needs them in rule
  order, found greedily (the earliest completion wins, which is what an analyst expects).

State is bounded: items older than the timespan are pruned, at most ``max_items`` are kept
per group (the oldest are dropped beyond that) and the state disappears on a timer once
event time passes ``last item + timespan``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.correlation.spec import CorrelationSpec, eval_expression
from detectors.errors import DetectorError
from detectors.model import Detection

SNAPSHOT_VERSION = 1
ROW_FIELDS = 7


@dataclass(slots=True)
class CorrelationState:
    """What one group keeps: the items inside the current window.

    ``items`` rows are ``[t_ms, event_id, ref, value, iso_timestamp, base_ids, node]`` where
    ``base_ids`` is the list of event ids behind a chained correlation's detection (else None)
    and ``node`` the event's ``socflow.node`` (None when it had none), so the alert names the
    node as single-event alerts do.
    """

    items: list[list[Any]] = field(default_factory=list)
    window_end: int | None = None
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {"v": SNAPSHOT_VERSION, "i": self.items, "l": self.last_t}
        if self.window_end is not None:
            snap["w"] = self.window_end
        return snap

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> CorrelationState:
        version = snap.get("v")
        if version != SNAPSHOT_VERSION:
            raise DetectorError(f"correlation state snapshot version {version!r} is not supported")
        # Rows of snapshots taken before rows kept the node have six fields.
        items = [[*row, None] if len(row) == ROW_FIELDS - 1 else list(row) for row in snap["i"]]
        return cls(items=items, window_end=snap.get("w"), last_t=int(snap["l"]))


def item_row(item: Mapping[str, Any]) -> list[Any]:
    return [int(item["t"]), str(item["id"]), str(item["r"]), item.get("v"), str(item.get("@", "")), item.get("ids"),
            item.get("n")]


def _numbers(rows: list[list[Any]]) -> list[float]:
    values = []
    for row in rows:
        value = row[3]
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values.append(number)
    return values


def _percentile(values: list[float], percentile: int) -> float:
    """Nearest-rank percentile (what SQL backends' percentile_disc computes)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ordered_subsequence(spec: CorrelationSpec, rows: list[list[Any]]) -> list[list[Any]] | None:
    wanted = spec.refs
    if spec.condition.expression is None and spec.condition.threshold < len(wanted):
        # "gte: 2" over three ordered rules: the first N rules in order are enough.
        wanted = wanted[: max(1, math.ceil(spec.condition.threshold))]
    found: list[list[Any]] = []
    # Event-time order (then event id): a late row applied after later ones still counts
    # where it happened.
    for row in sorted(rows, key=lambda kept: (kept[0], kept[1])):
        if len(found) < len(wanted) and row[2] == wanted[len(found)]:
            found.append(row)
    return found if len(found) == len(wanted) else None


def _metric(spec: CorrelationSpec, rows: list[list[Any]]) -> float | None:
    """The number the condition compares for count and value types (None: no numeric value)."""
    kind = spec.type
    if kind == "event_count":
        return float(len(rows))
    if kind == "value_count":
        return float(len({str(row[3]) for row in rows if row[3] is not None}))
    values = _numbers(rows)
    if not values:
        return None
    if kind == "value_sum":
        return sum(values)
    if kind == "value_avg":
        return sum(values) / len(values)
    return _percentile(values, spec.condition.percentile or 50)


def evaluate(spec: CorrelationSpec, rows: list[list[Any]]) -> list[list[Any]] | None:
    """The rows that make the condition hold over ``rows`` (the window), or None."""
    if not rows:
        return None
    cond = spec.condition
    if spec.type == "temporal_ordered":
        return _ordered_subsequence(spec, rows)
    if spec.type == "temporal":
        present = {row[2] for row in rows}
        if cond.expression is not None:
            holds = eval_expression(cond.expression, present)
        else:
            holds = cond.holds(len(present & set(spec.refs)))
        return rows if holds else None
    metric = _metric(spec, rows)
    return rows if metric is not None and cond.holds(metric) else None


def _detection(spec: CorrelationSpec, rows: list[list[Any]], group: Mapping[str, Any]) -> Detection:
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        for ident in row[5] or [row[1]]:
            if ident in seen:
                continue
            seen.add(ident)
            event: dict[str, Any] = {"@timestamp": row[4], "event": {"id": ident}}
            if row[6] is not None:
                event["socflow"] = {"node": row[6]}
            events.append(event)
    last = max(rows, key=lambda row: row[0])
    return Detection.for_events(spec.rule, events, kind="correlation", group=dict(group), timestamp=last[4])


def step(
    spec: CorrelationSpec,
    state: CorrelationState,
    item: Mapping[str, Any],
    group: Mapping[str, Any],
    max_items: int = 10_000,
) -> tuple[CorrelationState, list[Detection]]:
    """Add one item (in event-time order) and return the new state and any detection."""
    row = item_row(item)
    now = row[0]
    detections: list[Detection] = []
    if not spec.fires_early:
        if state.window_end is not None and now >= state.window_end:
            state, detections = on_timer(spec, state, state.window_end, group)
        if state.window_end is None:
            state.window_end = now + spec.timespan_ms
        state.items.append(row)
    else:
        horizon = now - spec.timespan_ms
        state.items = [kept for kept in state.items if kept[0] > horizon]
        state.items.append(row)
        hit = evaluate(spec, state.items)
        if hit is not None:
            detections.append(_detection(spec, hit, group))
            state.items = []
    limit = max(max_items, int(spec.condition.threshold) + 1)
    if len(state.items) > limit:
        del state.items[: len(state.items) - limit]
    state.last_t = max(state.last_t, now)
    return state, detections


def next_timer(spec: CorrelationSpec, state: CorrelationState) -> int | None:
    """When event time must next call :func:`on_timer`: window close or state expiry."""
    if state.window_end is not None:
        return state.window_end
    if state.items:
        return state.last_t + spec.timespan_ms
    return None


def on_timer(
    spec: CorrelationSpec, state: CorrelationState, now: int, group: Mapping[str, Any]
) -> tuple[CorrelationState, list[Detection]]:
    """Close a complete window (non-monotonic conditions) and expire old items."""
    detections: list[Detection] = []
    if state.window_end is not None and now >= state.window_end:
        hit = evaluate(spec, state.items)
        if hit is not None:
            detections.append(_detection(spec, hit, group))
        state.items = []
        state.window_end = None
    elif state.window_end is None:
        horizon = now - spec.timespan_ms
        state.items = [kept for kept in state.items if kept[0] > horizon]
    return state, detections


def is_empty(state: CorrelationState) -> bool:
    return not state.items and state.window_end is None
