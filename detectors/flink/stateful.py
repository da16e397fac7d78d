"""The stateful stage on Flink: keyed records in, JSON detection records out.

``add_stateful_stage(keyed, plan)`` wires the pure core of ``detectors.stateful``
into Flink and only does what Flink must do:

- timestamps from each record's ``ts`` (see ``keyed_batch``), which travels beside the
  record with its key, so timing and keying run in the JVM alone; watermarks with
  bounded out-of-orderness, emitted with the record that moves them when the job has
  socflow's jar (``EagerWatermarks``: a checkpoint never separates a batch from the timers
  its watermark fires); an input silent for ``idle_source_s`` stops holding the
  watermark back (with parallelism > 1 some source tasks may have nothing to read);
- ``key_by`` the record's key (one key per correlation group / detector group);
- per chain level one :class:`StatefulFunction` (a ``KeyedProcessFunction``): items wait in
  keyed state (a ``ListState``, one chunk per record, so a record appends its items and never
  rewrites what already waits; a timer decodes only the chunks it releases items from) until
  an event-time timer at their time fires, then are
  applied in (time, event id) order via ``plan.step``; the state is a ``ValueState`` holding
  the JSON of the core's versioned snapshot and the key's processed-up-to horizon; ``next_timer`` timers
  close windows and expire state (the TTL is in event time, so memory stays bounded);
- late items (at or before the key's horizon) are counted in the ``late_items`` metric,
  applied out of order when within the allowed lateness, otherwise dropped and counted in
  ``late_dropped`` (forwarded detections of a chain are applied, never dropped) — see
  ``detectors.correlation.engine`` for why lateness is per key;
- items the operator's watermark has already passed, though not late for their key, are
  applied at once (``behind_watermark_items``): their timer would wait for the next
  watermark advance, which a quiet stream may never bring;
- detections of chained correlations feed the next level as keyed records;
- hot reload: a record names the published rule set that routed it (``"rs"``), and its items
  are applied with that set's correlations and detector thresholds (loaded once per version).
  The state envelope remembers the identity of what its key was built under
  (``StatefulPlan.identity``): a correlation whose definition changed starts empty, one that
  did not keeps its half-built windows, a detector keeps its baselines under new thresholds,
  and a key whose rule the set removed is dropped at its next timer.

The same semantics run without Flink in :class:`detectors.stateful.StatefulEngine`; tests
compare the two through the whole job (``tests/correlation/test_flink_job.py``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyflink.common import Duration, Row, Types, WatermarkStrategy
from pyflink.datastream import DataStream, KeyedProcessFunction, KeyedStream, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.java_gateway import get_gateway

from detectors.correlation.engine import NEVER, is_forwarded, item_order, key_level, timer_at
from detectors.flink.jvm import java_class
from detectors.stateful import StatefulPlan
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)

# A keyed record as the JVM carries it: (key, record JSON).
KEYED_ROW = Types.ROW([Types.STRING(), Types.STRING()])
# A batch of events keyed by its source subtask: (key, spool line or Kafka record as UTF-8 bytes).
BATCH_RECORD = Types.PRIMITIVE_ARRAY(Types.BYTE())
BATCH_ROW = Types.ROW([Types.STRING(), BATCH_RECORD])
# The key PyFlink's KeyByKeySelector takes from a keyed row: its first field, as a one-field row.
_ROW_KEY = Types.ROW([Types.STRING()])
_DECODER = json.JSONDecoder()
_KEY_PREFIX = '{"key":'
_HORIZON_PREFIX = '{"h":'


def record_key(record: str) -> str:
    """The key of a keyed record without decoding its items (records start with ``{"key":``)."""
    if record.startswith(_KEY_PREFIX):
        key, _end = _DECODER.raw_decode(record, len(_KEY_PREFIX))
        return str(key)
    return str(json.loads(record)["key"])


def stored_horizon(text: str) -> int:
    """The horizon of a stored state envelope without decoding its snapshot (``"h"`` comes first).

    Every record checks its items against the horizon; decoding the whole snapshot for that
    (hundreds of groups in a sharded detector's key) cost more than the items' work.
    """
    if text.startswith(_HORIZON_PREFIX):
        end = text.find(",", len(_HORIZON_PREFIX))
        try:
            return int(text[len(_HORIZON_PREFIX) : end])
        except ValueError:
            pass
    return int(json.loads(text)["h"])


def waiting_chunk(items: list[dict[str, Any]]) -> str:
    """Items as they wait in keyed state: ``"<earliest t> <latest t> <JSON list>"``.

    The times up front let a timer keep the chunks it releases nothing from without decoding
    and encoding them again (a busy key holds seconds' worth of records).
    """
    times = [int(item["t"]) for item in items]
    return f"{min(times)} {max(times)} {json.dumps(items, separators=(',', ':'))}"


def _with_version(items: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """Waiting items are applied by a timer, which has no record: each carries the rule set
    version that routed it (as "rs": an item's "v" is a correlation's value)."""
    if version:
        for item in items:
            item["rs"] = version
    return items


def _forward_record(key: str, item: dict[str, Any]) -> str:
    return json.dumps({"key": key, "items": [item], "ts": int(item["t"])}, separators=(",", ":"), default=str)


class StatefulFunction(KeyedProcessFunction):
    """Load state, call the core, store state, register event-time timers (one chain level).

    Output: JSON Detection records (``Detection.as_record()``) of rules that generate alerts,
    and — for chained correlations — keyed records (``{"key": ...}``) for the next level.
    """

    def __init__(self, plan: StatefulPlan, level: int, *, ruleset_store: str = "", config_dir: str = "",
                 plan_version: str = "") -> None:
        self.plan = plan
        self.level = level
        # Hot reload: plans of other published versions are loaded from the store when a record
        # names one (``plan_version``: the published version ``plan`` was built from, if any).
        self.ruleset_store = ruleset_store
        self.config_dir = config_dir
        self.plan_version = plan_version
        self.lateness = plan.settings.event_time.allowed_lateness_ms
        self.resolution = plan.settings.event_time.timer_resolution_ms
        self.expiry_resolution = max(plan.settings.event_time.expiry_resolution_ms, self.resolution)
        self.plans: dict[str, StatefulPlan] = {}
        self.newest_version = ""  # of the last record (records of one input come in switch order)

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("core", Types.STRING()))
        # Waiting items, one chunk per record (waiting_chunk): appending costs what the record
        # brings, where rewriting one growing value cost seconds' worth of a busy key's items.
        self.pending = runtime_context.get_list_state(ListStateDescriptor("waiting-chunks", Types.STRING()))
        # Where versions before the ListState kept waiting items: read once by the next timer after
        # a restore from such a checkpoint (their timers are in it), then cleared.
        self.legacy_pending = runtime_context.get_state(ValueStateDescriptor("pending", Types.STRING()))
        metrics = runtime_context.get_metrics_group().add_group("socflow_stateful")
        self.items_counter = metrics.counter("items")
        self.late_counter = metrics.counter("late_items")
        self.dropped_counter = metrics.counter("late_dropped")
        self.behind_counter = metrics.counter("behind_watermark_items")
        self.detections_counter = metrics.counter("detections")
        self.reset_counter = metrics.counter("state_reset_on_switch")

    def plan_for(self, version: str) -> StatefulPlan:
        """The plan of a published rule set version (the job's own for none, or one that cannot
        be loaded any more: logged once, its items then run under the job's plan)."""
        if not version or version == self.plan_version or not self.ruleset_store:
            return self.plan
        plan = self.plans.get(version)
        if plan is None:
            from detectors.ruleset import RuleSetRefused, load_plan

            try:
                plan = load_plan(Path(self.ruleset_store), version, Path(self.config_dir))
                log_event(LOGGER, "stateful_plan_loaded", version=version, level=self.level,
                          correlations=len(plan.correlations.specs), detectors=len(plan.anomalies.detectors))
            except RuleSetRefused as error:
                log_event(LOGGER, "stateful_plan_unavailable", logging.ERROR, version=version, reason=str(error))
                plan = self.plan
            self.plans[version] = plan
        return plan

    # State envelope: {"h": horizon ms, "s": core snapshot or null, "rs": rule set version the
    # state was last written under, "d": the key's identity under it}. "h" comes first (stored_horizon).
    def _envelope(self) -> dict[str, Any] | None:
        text = self.state.value()
        return json.loads(text) if text else None

    def _load(self, key: str, plan: StatefulPlan) -> tuple[int, Any]:
        envelope = self._envelope()
        if envelope is None:
            return NEVER, None
        snap = envelope.get("s")
        if snap is not None and envelope.get("d") not in (None, plan.identity(key)):
            # Built under another definition of this key's rule (or detector shape): start empty.
            self.reset_counter.inc()
            snap = None
        return int(envelope["h"]), (plan.decode(key, snap) if snap is not None else None)

    def _emit(self, detections: list[Any], forwards: list[tuple[str, dict[str, Any]]]) -> Iterator[str]:
        for detection in detections:
            self.detections_counter.inc()
            # Same form as the Sigma detections of the job (sorted keys).
            yield json.dumps(detection.as_record(), ensure_ascii=False, sort_keys=True, default=str)
        for target, item in forwards:
            yield _forward_record(target, item)

    def _store(self, key: str, horizon: int, state: Any, ctx: Any, *, plan: StatefulPlan, version: str) -> None:
        if state is None or plan.is_empty(key, state):
            if horizon == NEVER:
                self.state.clear()
                return
            # The horizon outlives the state by the allowed lateness (see the core's driver).
            self.state.update(json.dumps({"h": horizon, "s": None}))
            ctx.timer_service().register_event_time_timer(timer_at(horizon + self.lateness, self.expiry_resolution))
            return
        envelope: dict[str, Any] = {"h": horizon, "s": plan.encode(key, state)}
        if version:
            envelope["rs"], envelope["d"] = version, plan.identity(key)
        self.state.update(json.dumps(envelope, separators=(",", ":")))
        upcoming = plan.next_timer(key, state)
        if upcoming is not None:
            ctx.timer_service().register_event_time_timer(timer_at(upcoming, self.expiry_resolution))

    def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        record = json.loads(value)
        key = str(record["key"])
        version = str(record.get("rs", ""))
        self.newest_version = version or self.newest_version
        horizon: int | None = None
        watermark: int | None = None
        late: list[dict[str, Any]] = []
        behind: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        timers: set[int] = set()
        items = record["items"]
        # Counted once per record: each inc() is a call into the JVM.
        self.items_counter.inc(len(items))
        for item in items:
            if horizon is None:
                text = self.state.value()
                horizon = stored_horizon(text) if text else NEVER
            moment = int(item["t"])
            if moment <= horizon:
                self.late_counter.inc()
                # A forwarded detection was judged on lateness at its own level: never dropped
                # here (this level's watermark may have overtaken it on its way).
                if moment <= horizon - self.lateness and not is_forwarded(item):
                    self.dropped_counter.inc()
                else:
                    late.append(item)
                continue
            if watermark is None:
                watermark = ctx.timer_service().current_watermark()
            if timer_at(moment, self.resolution) <= watermark:
                # Behind this operator's watermark though not late for its key: its timer would
                # wait for the next watermark advance, which quiet inputs may never bring. The
                # watermark overtakes items on the way: a forwarded detection of the previous
                # level, or a record of an input that had been idle (Flink leaves a reactivated
                # channel out of the watermark until it catches up with the others).
                behind.append(item)
                continue
            waiting.append(item)
            timers.add(timer_at(moment, self.resolution))
        if waiting:
            self.pending.add(waiting_chunk(_with_version(waiting, version)))
        # Flink keeps one timer per key and time: registering each distinct time once is the same.
        for moment in timers:
            ctx.timer_service().register_event_time_timer(moment)
        if late or behind:
            yield from self._apply_now(key, late, behind, ctx, version)

    def _apply_now(
        self, key: str, late: list[dict[str, Any]], behind: list[dict[str, Any]], ctx: KeyedProcessFunction.Context,
        version: str = "",
    ) -> Iterator[str]:
        """Apply late items (in arrival order, as the core does) and items behind the watermark (in
        event-time order, as their timers would have), then fire a window or expiry timer that
        the watermark has already passed, for the same reason."""
        if behind:
            self.behind_counter.inc(len(behind))
        plan = self.plan_for(version)
        horizon, state = self._load(key, plan)
        if state is None:
            state = plan.new_state(key)
        for item in [*late, *sorted(behind, key=item_order)]:
            state, detections, forwards = plan.step(key, state, item)
            yield from self._emit(detections, forwards)
        upcoming = None if plan.is_empty(key, state) else plan.next_timer(key, state)
        if upcoming is not None:
            due = timer_at(upcoming, self.expiry_resolution)
            if due <= ctx.timer_service().current_watermark():
                state, detections, forwards = plan.on_timer(key, state, due)
                yield from self._emit(detections, forwards)
                horizon = max(horizon, due)
        self._store(key, horizon, state, ctx, plan=plan, version=version)

    def _take_due(self, timestamp: int) -> tuple[list[dict[str, Any]], bool]:
        """The current key's waiting items at or before ``timestamp``, in arrival order, taken out
        of the waiting state; and whether any item still waits."""
        chunks = list(self.pending.get() or ())
        legacy = self.legacy_pending.value()
        if legacy:
            self.legacy_pending.clear()
            if legacy_items := json.loads(legacy):
                chunks.insert(0, waiting_chunk(legacy_items))
        due: list[dict[str, Any]] = []
        kept: list[str] = []
        for chunk in chunks:
            earliest, latest, body = chunk.split(" ", 2)
            if int(earliest) > timestamp:
                kept.append(chunk)
                continue
            items = json.loads(body)
            if int(latest) <= timestamp:
                due.extend(items)
                continue
            due.extend(item for item in items if int(item["t"]) <= timestamp)
            kept.append(waiting_chunk([item for item in items if int(item["t"]) > timestamp]))
        if due or legacy:
            if kept:
                self.pending.update(kept)
            else:
                self.pending.clear()
        return due, bool(kept)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[str]:
        key = str(ctx.get_current_key())
        due, still_waiting = self._take_due(timestamp)
        ready = sorted(due, key=item_order)
        envelope = self._envelope()
        # Each item under the rule set that routed it; the timer itself under the newest of them,
        # or with none due under the newest rule set this task has seen (a rule it removed: the
        # key's state goes; a definition it changed: the state starts over).
        version = str(ready[-1].get("rs", "")) if ready else self.newest_version or str((envelope or {}).get("rs", ""))
        plan = self.plan_for(version)
        if plan.identity(key) is None:
            # The rule set removed this key's correlation or detector: its state goes.
            if envelope is not None:
                self.state.clear()
            return
        horizon, state = self._load(key, plan)
        if state is None and not ready:
            if horizon != NEVER and not still_waiting and timestamp >= horizon + self.lateness:
                self.state.clear()  # the remembered horizon has served its time
            return
        for item in ready:
            item_plan = self.plan_for(str(item.get("rs", ""))) if version else plan
            if state is None:
                state = item_plan.new_state(key)
            state, detections, forwards = item_plan.step(key, state, item)
            yield from self._emit(detections, forwards)
        if state is None:
            state = plan.new_state(key)
        state, detections, forwards = plan.on_timer(key, state, timestamp)
        yield from self._emit(detections, forwards)
        self._store(key, max(horizon, timestamp), state, ctx, plan=plan, version=version)


def _is_forward(record: str) -> bool:
    return record.startswith(_KEY_PREFIX)


def watermark_strategy(plan: StatefulPlan, eager_watermarks: str = "") -> WatermarkStrategy:
    """Bounded out-of-orderness with idleness; emitted with the records when ``eager_watermarks``
    names the Java class of socflow's jar (``EagerWatermarks``) that does so, else periodically.

    Eager emission keeps a batch's watermark ahead of the next checkpoint barrier; with the
    periodic one, a restore from that checkpoint loses the watermark (see EagerWatermarks.java).
    """
    timing = plan.settings.event_time
    if eager_watermarks:
        # Every timer of the stage sits on a multiple of both resolutions' common divisor.
        step = math.gcd(timing.timer_resolution_ms, timing.expiry_resolution_ms) or 1
        base = WatermarkStrategy(java_class(eager_watermarks).strategy(timing.out_of_orderness_ms, step))
    else:
        base = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(timing.out_of_orderness_ms))
    return base.with_idleness(Duration.of_millis(int(timing.idle_source_s * 1000)))


def add_stateful_stage(
    keyed: DataStream,
    plan: StatefulPlan,
    *,
    uid_prefix: str = "stateful",
    eager_watermarks: str = "",
    key_level_filter: str = "",
    ruleset_store: str = "",
    config_dir: str = "",
    plan_version: str = "",
) -> DataStream:
    """Keyed records in, as ``((key, record), ts)`` (``KEYED_RECORD``); JSON Detection records out.

    One keyed operator per correlation chain level (``plan.levels``, usually 1). Every
    operator is named and has a stable uid so savepoints and checkpoints restore.
    ``eager_watermarks``: see :func:`watermark_strategy`; ``key_level_filter``: the Java filter
    class (socflow's jar) splitting records by level, else a Python filter does.

    A record reaches its keyed operator without calling Python: it carries its timestamp and key
    beside it, so Flink's own Java functions time it (the ones PyFlink's
    ``assign_timestamps_and_watermarks`` uses after its Python extractor) and key it (the ones
    its ``key_by`` uses after its Python key map). Each of those Python steps was one crossing
    into the interpreter per record, under the lock the whole job shares.
    """
    jvm = get_gateway().jvm
    strategy = watermark_strategy(plan, eager_watermarks)
    j_timed = keyed._j_data_stream.assignTimestampsAndWatermarks(
        strategy._j_watermark_strategy.withTimestampAssigner(
            jvm.org.apache.flink.streaming.api.functions.python.eventtime.CustomTimestampAssigner()
        )
    )
    DataStream(j_timed).name("stateful: event time and watermarks").uid(f"{uid_prefix}-watermarks")
    timed = DataStream(
        j_timed.map(
            jvm.org.apache.flink.streaming.api.functions.python.eventtime.RemoveTimestampMapFunction(),
            KEYED_ROW.get_java_type_info(),
        )
    )
    timed.name("stateful: keyed rows").uid(f"{uid_prefix}-rows")
    outputs: list[DataStream] = []
    forwards: DataStream | None = None
    levels = plan.levels
    for level in range(levels):
        feed = timed
        if levels > 1:
            feed = _level_rows(timed, level, key_level_filter).name(f"stateful: level {level} records").uid(
                f"{uid_prefix}-level-{level}-filter"
            )
        if forwards is not None:
            feed = feed.union(forwards)
        processed = (
            key_by_row_key(feed)
            .process(StatefulFunction(plan, level, ruleset_store=ruleset_store, config_dir=config_dir,
                                      plan_version=plan_version), output_type=Types.STRING())
            .name(f"stateful: correlations and detectors (level {level})")
            .uid(f"{uid_prefix}-keyed-{level}")
        )
        if level == levels - 1:
            outputs.append(processed)
            break
        outputs.append(
            processed.filter(lambda record: not _is_forward(record))
            .name(f"stateful: level {level} detections")
            .uid(f"{uid_prefix}-level-{level}-detections")
        )
        forwards = (
            processed.flat_map(_forward_rows, output_type=KEYED_ROW)
            .name(f"stateful: level {level} chained")
            .uid(f"{uid_prefix}-level-{level}-chained")
        )
    if len(outputs) == 1:
        return outputs[0]
    return outputs[0].union(*outputs[1:])


def _level_rows(rows: DataStream, level: int, java_filter: str) -> DataStream:
    if java_filter:
        return DataStream(rows._j_data_stream.filter(java_class(java_filter)(level)))
    return rows.filter(lambda row, lv=level: key_level(row[0]) == lv)


def key_by_row_key(rows: DataStream, record_type: Any = None) -> KeyedStream:
    """``key_by`` the row's key (its first field) in the JVM, as PyFlink's own ``key_by`` does
    once its Python map has put the key in front: the Python function sees the record alone, of
    ``record_type`` (the row's second field; a string unless said)."""
    j_keyed = rows._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(), _ROW_KEY.get_java_type_info())
    return KeyedStream(j_keyed, record_type or Types.STRING(), rows)


def reinterpret_by_row_key(rows: DataStream, record_type: Any) -> KeyedStream:
    """:func:`key_by_row_key` without the ``keyBy``: for rows whose keys each subtask owns already
    (the Java ``SubtaskKey``), so the keyed operator behind is chained to them (no shuffle)."""
    jvm = get_gateway().jvm
    j_keyed = jvm.org.apache.flink.streaming.api.datastream.DataStreamUtils.reinterpretAsKeyedStream(
        rows._j_data_stream, jvm.KeyByKeySelector(), _ROW_KEY.get_java_type_info())
    return KeyedStream(j_keyed, record_type, rows)


def _forward_rows(record: str) -> Iterator[Row]:
    """A chained correlation's forwarded detection as the next level's keyed row; nothing else."""
    if _is_forward(record):
        yield Row(record_key(record), record)
