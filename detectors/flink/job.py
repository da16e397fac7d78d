"""The socflow detection job on Flink: spool segments in, alert stream and dead letters out.

The shell is thin on purpose. One Python operator per spool record (a batch of ~1000 events)
runs the pure :class:`~detectors.pipeline.BatchProcessor`; its side outputs carry dead
letters and, from the spool, the names of segments read to their end (``ingest.spool_prune``
deletes those). Each output goes to a ``FileSink`` that rolls on every checkpoint, so the
indexer sees each checkpoint's alerts as soon as Flink has committed them and never a file that
a restore could take back.

Run it with :func:`run_job` (local runtime inside this process) or submit this module to a
cluster (``python -m detectors.flink.job SPEC.json``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import site
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, Encoder, Row, Types, WatermarkStrategy
from pyflink.common.time import Time
from pyflink.datastream import (
    DataStream,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    OutputTag,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors import Source
from pyflink.datastream.connectors.file_system import (
    BucketAssigner,
    BulkFormat,
    FileSink,
    FileSource,
    FileSplitAssignerProvider,
    OutputFileConfig,
    RollingPolicy,
    StreamFormat,
)
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from detectors.flink.jvm import java_class
from detectors.stateful import build_plan
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
# Names of spool segments read to their end (from SegmentEndLines' "#segment-end <name>" lines),
# committed with each checkpoint so the spool can delete what no restore will read again.
CONSUMED = OutputTag("consumed-segments", Types.STRING())
SEGMENT_END = "#segment-end "
SEGMENT_END_BYTES = SEGMENT_END.encode()
# Keyed inputs of correlations and anomaly detectors, one record per key per batch, as
# ``((key, record), ts)``: the JVM times and keys them without calling Python (see add_stateful_stage).
KEYED = OutputTag("keyed-records", Types.TUPLE([Types.ROW([Types.STRING(), Types.STRING()]), Types.LONG()]))


@dataclass(frozen=True)
class JobSpec:
    """Everything the job needs, as plain data so it can travel to a cluster as JSON."""

    spool_dir: str
    alert_stream_dir: str
    deadletter_dir: str
    checkpoint_dir: str
    rule_dirs: tuple[str, ...]
    config_dir: str
    bounded: bool = False
    parallelism: int = 1
    execution_mode: str = "thread"
    checkpoint_interval_ms: int = 1000
    monitor_interval_s: float = 0.5
    metrics_port: int = 0
    restore_from: str | None = None
    job_name: str = "socflow-detect"
    # "spool" (files, the default) or "kafka" (records of the same shape: JSON arrays).
    source: str = "spool"
    kafka_bootstrap: str = ""
    kafka_topic: str = "socflow-events"
    kafka_group: str = "socflow-detect"
    jars: tuple[str, ...] = ()
    # Java class whose static provider() orders the spool's splits (deploy.flink.SPOOL_SPLIT_ASSIGNER,
    # from a jar in ``jars``); empty: Flink's default, which reads a backlog in no set order.
    spool_split_assigner: str = ""
    # Java class whose static textLines() reads the spool's lines and then "#segment-end <name>" per
    # segment read (deploy.flink.SPOOL_LINES_FORMAT, in jars); empty: Flink's text lines, nothing pruned.
    spool_lines_format: str = ""
    # Where the names of consumed segments are committed (ingest.spool_prune.CONSUMED_DIR under the spool).
    consumed_dir: str = ""
    # Java class whose static of(fileSource) keeps deleted segments out of the source's checkpoints
    # (deploy.flink.FORGETFUL_FILE_SOURCE, in jars); empty: Flink's file source as it is.
    forgetful_file_source: str = ""
    # Java class whose static strategy() emits watermarks with their records (deploy.flink.EAGER_WATERMARKS,
    # in jars); empty: Flink's periodic generator.
    eager_watermarks: str = ""
    # Java filter class splitting keyed records by chain level (deploy.flink.KEY_LEVEL_FILTER, in
    # jars); empty: a Python filter, one more interpreter crossing per record and level.
    key_level_filter: str = ""
    # Java map class keying each batch by its source subtask (deploy.flink.SUBTASK_KEY, in jars);
    # empty: the Python SubtaskKey, two more interpreter crossings of every batch.
    subtask_key: str = ""
    dedup_window_s: int = 3600
    dedup_entity_fields: tuple[str, ...] = ("source.ip", "host.name", "user.name")
    # Suppression files, merged in order (settings.suppression_paths: config, then the console's).
    suppressions_paths: tuple[str, ...] = ()
    # Published rule sets (detectors.ruleset): when ``current`` names one, the job judges with it
    # instead of ``rule_dirs`` and switches to each new version between batches.
    ruleset_store: str = ""
    reload_interval_s: float = 5.0
    extra_config: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        data["rule_dirs"] = tuple(data["rule_dirs"])
        data["jars"] = tuple(data.get("jars", ()))
        data["dedup_entity_fields"] = tuple(data.get("dedup_entity_fields", ()))
        old = data.pop("suppressions_path", "")  # a spec written before the console's suppressions file
        data["suppressions_paths"] = tuple(data.get("suppressions_paths", ())) or ((old,) if old else ())
        return cls(**data)


def subtask_index(runtime_context: RuntimeContext) -> int:
    """This subtask's index. PyFlink 2.2's thread-mode context asks Flink 2's Java RuntimeContext
    for ``getIndexOfThisSubtask``, which moved to its ``getTaskInfo()``: ask there first."""
    java = getattr(runtime_context, "_runtime_context", None)
    if java is not None and hasattr(java, "getTaskInfo"):
        return int(java.getTaskInfo().getIndexOfThisSubtask())
    return int(runtime_context.get_index_of_this_subtask())


class SubtaskKey(MapFunction):
    """Each batch record keyed by the index of the source subtask that read it.

    The batch operator is keyed by it so that it has keyed state for the active rule set version
    (PyFlink has no operator state for a Python function in thread mode): one key per source
    subtask, whose batches stay in their order on the way (one channel), so versions still
    change between two batches of a Kafka partition or the spool, in stream order.

    The fallback where socflow's jar is not on the job: the Java ``SubtaskKey`` picks keys its
    subtask owns and so spares the ``keyBy`` shuffle this one needs.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        self.key = str(subtask_index(runtime_context))

    def map(self, value: str) -> Row:
        return Row(self.key, value.encode("utf-8", "surrogateescape"))


class DetectBatches(KeyedProcessFunction):
    """Flink operator: decode a spool record, match every event, emit detections.

    The rule set is compiled once per task in ``open``; nothing about rules travels with the
    pickled function but their paths.

    Hot reload: the version that judges a key's batches (a key per source subtask, see
    :class:`SubtaskKey`) is in keyed state, written with the first batch it judges; a switch is
    that write, so a checkpoint holds the version in force at its barrier and a job restored from
    it resumes on that version, then switches again to the published one by the normal path.
    """

    def __init__(self, rule_dirs: tuple[str, ...], config_dir: str, *, levels: int,
                 ruleset_store: str = "", reload_interval_s: float = 5.0, start_version: str | None = None) -> None:
        self.rule_dirs = rule_dirs
        self.config_dir = config_dir
        self.levels = levels  # keyed operators in a row behind this one (0: no stateful stage)
        self.ruleset_store = ruleset_store
        self.reload_interval_s = reload_interval_s
        self.start_version = start_version
        self.watcher: Any = None

    def open(self, runtime_context: RuntimeContext) -> None:
        from detectors.pipeline import BatchProcessor
        from detectors.ruleset import RuleSetWatcher, StampedMatcher, rule_versions, sources_version
        from detectors.sigma.cache import load_engine

        # Through the rule-set cache: every task of every restart loads the same rules.
        engine, report, _ = load_engine([Path(p) for p in self.rule_dirs], config_dir=Path(self.config_dir),
                                        freeze=True)
        for failure in report.failures:
            # A rule that cannot load is reported, not skipped silently.
            log_event(LOGGER, "rule_load_failed", logging.ERROR, path=failure.path, reason=failure.reason)
        store = Path(self.ruleset_store) if self.ruleset_store else None
        # Batch processors by rule set version: the one switched to, and one a restored key resumes on.
        self.processors: dict[str, Any] = {}
        active = None
        if store is not None:
            published = _published_rule_set(store, Path(self.config_dir), self.start_version)
            if published is not None:
                active = published.version
                self.processors[active] = self._processor(published)
        if active is None:
            # Unpublished rule directories judge as before (a failed rule reported, the rest
            # loaded), under the digest of their files as version.
            version = sources_version([Path(p) for p in self.rule_dirs])
            matcher = StampedMatcher(engine, version, rule_versions(engine))
            router = build_plan(engine, self.config_dir).route if self.levels else None
            self.processors[version] = BatchProcessor(matcher, router)
            self.unpublished = version
        else:
            self.unpublished = ""
        self.active_version = active or self.unpublished
        # Per key: the version judging it (read from keyed state once) and, for a key restored
        # on an older version, when it may switch (the watcher's next look, as in the run before).
        self.key_versions: dict[str, str] = {}
        self.resume_until: dict[str, float] = {}
        self.version_state = runtime_context.get_state(ValueStateDescriptor("ruleset-version", Types.STRING()))
        # The rule set lives as long as the task (frozen as it loaded, above), and so do the
        # processors and plans built on it: without this the garbage collector's full
        # collections re-walk their millions of objects (measured 10-20% of matching time).
        gc.freeze()
        # A batch allocates thousands of small containers: at the default threshold (700) the
        # young generation was collected several times per batch (~4% of the operator's time).
        gc.set_threshold(100_000, 50, 100)
        metrics = runtime_context.get_metrics_group().add_group("socflow")
        self.events_in = metrics.counter("events_in")
        self.detections_out = metrics.counter("detections_out")
        self.dead_letters_out = metrics.counter("dead_letters_out")
        self.segments_consumed = metrics.counter("segments_consumed")
        # Counters set once, not gauges: a PyFlink gauge calls into Python from the metric
        # reporter's thread, and a Prometheus scrape doing so crashed the JVM (SIGSEGV in pemja,
        # seen once in a test run). Prometheus exports Flink counters as gauges all the same.
        metrics.counter("rules_loaded").inc(report.loaded)
        metrics.counter("rules_failed").inc(len(report.failures))
        self.rulesets_switched = metrics.counter("rulesets_switched")
        self.rulesets_refused = metrics.counter("rulesets_refused")
        log_event(LOGGER, "ruleset_active", version=self.active_version, published=active is not None)
        if store is not None:
            self.watcher = RuleSetWatcher(store, Path(self.config_dir), active=active,
                                          interval_s=self.reload_interval_s, loader=self._load_checked,
                                          on_refused=lambda _version, _reasons: self.rulesets_refused.inc())

    def _processor(self, loaded: Any) -> Any:
        """The batch processor of a loaded published rule set: its matcher and its routing."""
        from detectors.pipeline import BatchProcessor
        from detectors.ruleset import plan_of

        return BatchProcessor(loaded.matcher, plan_of(loaded, Path(self.config_dir)).route if self.levels else None)

    def _load_checked(self, store: Path, version: str, config_dir: Path) -> Any:
        """The watcher's loader (background thread): a published set whose correlations and
        detectors fit the keyed operators this job was built with, ready to judge."""
        from detectors.ruleset import RuleSetRefused, load_published, plan_fits, plan_of

        loaded = load_published(store, version, config_dir)
        reasons = plan_fits(plan_of(loaded, config_dir), self.levels)
        if reasons:
            raise RuleSetRefused("rule set needs a restart of the job", reasons, source=str(store / version))
        return version, self._processor(loaded), loaded.rules_loaded

    def _resumed(self, stored: str) -> str:
        """The version a restored key had in force at the checkpoint, loaded if this task has not
        (the active one when that version cannot be loaded any more: logged)."""
        from detectors.ruleset import RuleSetRefused, load_published

        if stored in self.processors:
            return stored
        if self.ruleset_store and stored != self.unpublished:
            try:
                self.processors[stored] = self._processor(
                    load_published(Path(self.ruleset_store), stored, Path(self.config_dir)))
                return stored
            except RuleSetRefused as error:
                log_event(LOGGER, "ruleset_resume_failed", logging.ERROR, version=stored, kept=self.active_version,
                          reason=str(error), reasons=error.reasons[:20])
        return self.active_version

    def _version_of(self, key: str, now: float) -> str:
        """Between two batches of ``key``: the version that judges the next one (a switch, to the
        version the watcher loaded last, is written to keyed state before the batch is judged)."""
        if self.watcher is not None:
            loaded = self.watcher.poll(now)
            if loaded is not None:
                version, processor, rules = loaded
                # Keep the processors keys still judge with (until their next batch switches them).
                keep = {*self.key_versions.values(), self.active_version}
                self.processors = {v: p for v, p in self.processors.items() if v in keep}
                self.processors[version] = processor
                log_event(LOGGER, "ruleset_loaded", version=version, previous=self.active_version, rules=rules)
                self.active_version = version
        current = self.key_versions.get(key)
        if current is None:
            stored = self.version_state.value()
            if stored:
                loading = time.monotonic()
                current = self._resumed(stored)
                # From when it is ready: loading the resumed version may take seconds.
                self.resume_until[key] = now + (time.monotonic() - loading) + self.reload_interval_s
                log_event(LOGGER, "ruleset_resumed", key=key, version=current, restored=stored,
                          active=self.active_version)
            else:
                current = self.active_version
                self.version_state.update(current)
            self.key_versions[key] = current
        if current != self.active_version and now >= self.resume_until.get(key, float("-inf")):
            self.version_state.update(self.active_version)
            self.key_versions[key] = self.active_version
            self.rulesets_switched.inc()
            log_event(LOGGER, "ruleset_switched", key=key, version=self.active_version, previous=current)
            current = self.active_version
        return current

    def process_element(self, value: bytes, ctx: KeyedProcessFunction.Context) -> Any:
        # A spool line or Kafka record as UTF-8 bytes (BATCH_ROW): decoded once, by the JSON decoder.
        if value.startswith(SEGMENT_END_BYTES):  # no spool line starts with '#': each is JSON
            self.segments_consumed.inc()
            yield CONSUMED, value[len(SEGMENT_END_BYTES):].decode("utf-8", "surrogateescape")
            return
        version = self._version_of(str(ctx.get_current_key()), time.monotonic())
        processor = self.processors.get(version) or self.processors[self.active_version]
        result = processor.process_line(value, source="spool")
        self.events_in.inc(result.events)
        self.detections_out.inc(len(result.detections))
        self.dead_letters_out.inc(len(result.dead_letters))
        for detection in result.detections:
            yield json.dumps(detection.as_record(), ensure_ascii=False, sort_keys=True)
        for letter in result.dead_letters:
            yield DEAD_LETTERS, json.dumps(letter, ensure_ascii=False)
        if result.keyed:
            from detectors.stateful import keyed_batch

            published = "" if version == self.unpublished else version
            for key, record, ts in keyed_batch(result.keyed, published):
                yield KEYED, (Row(key, record), ts)


class GroupAlerts(KeyedProcessFunction):
    """Flink operator: suppressions, then one alert per rule, entity and window (detectors.dedup).

    Keyed by (rule, entity, window start); the alert's state lives in a ValueState whose TTL
    outlasts the window, so memory stays bounded. Each update goes out with a higher version.
    """

    def __init__(self, window_s: int, entity_fields: tuple[str, ...], suppressions_paths: tuple[str, ...],
                 ruleset_store: str = "") -> None:
        self.window_s = window_s
        self.entity_fields = entity_fields
        self.suppressions_paths = suppressions_paths
        self.ruleset_store = ruleset_store

    def open(self, runtime_context: RuntimeContext) -> None:
        from detectors.dedup import DedupPolicy, ReloadingSuppressor
        from detectors.ruleset import VersionedSuppressors

        self.policy = DedupPolicy(window_s=self.window_s, entity_fields=self.entity_fields)
        # Reloaded when a file changes (checked every 10 s): the console's suppressions apply
        # to the running job, whatever rule set judged the detection.
        self.suppressions = ReloadingSuppressor([Path(path) for path in self.suppressions_paths])
        # A detection of a published rule set is also judged by that set's suppressions (hot reload).
        self.published = VersionedSuppressors(Path(self.ruleset_store) if self.ruleset_store else None, None)
        descriptor = ValueStateDescriptor("alert", Types.STRING())
        # Late detections of a window arrive within minutes; a day keeps room for replays.
        ttl = StateTtlConfig.new_builder(Time.seconds(self.window_s + 86_400)).build()
        descriptor.enable_time_to_live(ttl)
        self.state = runtime_context.get_state(descriptor)
        metrics = runtime_context.get_metrics_group().add_group("socflow")
        self.metrics = metrics
        self.suppressed = {s.name: metrics.counter(f"suppressed_{s.name}")
                           for s in self.suppressions.suppressor.suppressions}
        self.suppressed_published = metrics.counter("suppressed_by_published_ruleset")
        self.updates = metrics.counter("alert_updates")

    def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Any:
        from detectors.dedup import AlertState, step
        from detectors.model import Detection

        detection = Detection.from_record(json.loads(value))
        self.suppressions.refresh(time.monotonic())
        name = self.suppressions.suppressor.suppressed_by(detection)
        if name is not None:
            if name not in self.suppressed:  # added while the job runs
                self.suppressed[name] = self.metrics.counter(f"suppressed_{name}")
            self.suppressed[name].inc()
            return
        published = self.published.for_version(detection.rule.ruleset_version)
        if published is not None and published.suppressed_by(detection) is not None:
            self.suppressed_published.inc()
            return
        _key, alert_id, _start = self.policy.key(detection)
        stored = self.state.value()
        state = AlertState.from_snapshot(json.loads(stored)) if stored else None
        state, alert = step(state, detection, alert_id)
        self.state.update(json.dumps(state.to_snapshot(), separators=(",", ":")))
        if alert is not None:
            self.updates.inc()
            yield json.dumps(alert.as_record(), ensure_ascii=False, sort_keys=True)


class AlertKey(KeySelector):
    """Key of a detection's alert: (rule, entity, window start), the same policy GroupAlerts uses."""

    def __init__(self, window_s: int, entity_fields: tuple[str, ...]) -> None:
        self.window_s = window_s
        self.entity_fields = entity_fields

    def get_key(self, value: str) -> str:
        from detectors.dedup import DedupPolicy
        from detectors.model import Detection

        policy = DedupPolicy(window_s=self.window_s, entity_fields=self.entity_fields)
        return policy.key(Detection.from_record(json.loads(value)))[0]


def flink_configuration(spec: JobSpec) -> Configuration:
    config = Configuration()
    settings = {
        "python.execution-mode": spec.execution_mode,
        "execution.checkpointing.interval": f"{spec.checkpoint_interval_ms} ms",
        "execution.checkpointing.dir": f"file://{spec.checkpoint_dir}",
        "state.checkpoints.dir": f"file://{spec.checkpoint_dir}",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        # RocksDB with incremental checkpoints: a checkpoint writes what changed since the last
        # one. The heap backend wrote all keyed state every checkpoint (every second), and the
        # alert grouping's state grows with every alert of its window: at 20,000 events/s the
        # bench's job spent 0.66 cores on checkpoint writes after two minutes, and rising.
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true",
        "parallelism.default": str(spec.parallelism),
        "pipeline.name": spec.job_name,
        # The embedded (thread-mode) interpreter starts from the base Python, not this
        # virtualenv: give it the project and the virtualenv's site-packages explicitly.
        "python.pythonpath": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *site.getsitepackages()]),
        # Fail visibly after a few attempts instead of restarting a broken job forever.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "2 s",
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
    }
    if spec.metrics_port:
        settings["metrics.reporter.prom.factory.class"] = (
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        )
        settings["metrics.reporter.prom.port"] = str(spec.metrics_port)
    if spec.restore_from:
        settings["execution.state-recovery.path"] = spec.restore_from
    settings.update(spec.extra_config)
    for key, value in settings.items():
        config.set_string(key, value)
    return config


def build_job(env: StreamExecutionEnvironment, spec: JobSpec) -> None:
    """Wire the job's operators into ``env``."""
    from detectors.flink.stateful import BATCH_RECORD, BATCH_ROW, key_by_row_key, reinterpret_by_row_key

    batches = _kafka_source(env, spec) if spec.source == "kafka" else _spool_source(env, spec)
    plan, start_version = _client_side_plan(spec)
    # Keyed by source subtask (SubtaskKey): the batch operator keeps its rule set version in keyed state.
    if spec.subtask_key:
        # Each subtask's key is one it owns: the batch operator is chained to the source, unshuffled.
        keyed = DataStream(batches._j_data_stream.map(java_class(spec.subtask_key)(), BATCH_ROW.get_java_type_info()))
        keyed_batches = reinterpret_by_row_key(keyed.name("key batches by source subtask").uid("batch-keys"),
                                               BATCH_RECORD)
    else:
        keyed = batches.map(SubtaskKey(), output_type=BATCH_ROW)
        keyed_batches = key_by_row_key(keyed.name("key batches by source subtask").uid("batch-keys"), BATCH_RECORD)
    detections = (
        keyed_batches.process(DetectBatches(spec.rule_dirs, spec.config_dir, levels=plan.levels if plan else 0,
                                            ruleset_store=spec.ruleset_store, reload_interval_s=spec.reload_interval_s,
                                            start_version=start_version),
                              output_type=Types.STRING())
        .name("sigma-detect")
        .uid("sigma-detect")
    )
    alerts = detections
    if plan is not None:
        from detectors.flink.stateful import add_stateful_stage

        keyed = side_output(detections, KEYED)
        alerts = detections.union(add_stateful_stage(keyed, plan, eager_watermarks=spec.eager_watermarks,
                                                     key_level_filter=spec.key_level_filter,
                                                     ruleset_store=spec.ruleset_store, config_dir=spec.config_dir,
                                                     plan_version=start_version or ""))
    grouped = (
        alerts.key_by(AlertKey(spec.dedup_window_s, spec.dedup_entity_fields), key_type=Types.STRING())
        .process(GroupAlerts(spec.dedup_window_s, spec.dedup_entity_fields, spec.suppressions_paths,
                             spec.ruleset_store),
                 output_type=Types.STRING())
        .name("suppress-and-group-alerts")
        .uid("group-alerts")
    )
    grouped.sink_to(_rolling_sink(spec.alert_stream_dir, "alerts")).name("alert-stream").uid("alert-stream")
    side_output(detections, DEAD_LETTERS).sink_to(_rolling_sink(spec.deadletter_dir, "deadletter")).name(
        "dead-letters"
    ).uid("dead-letters")
    if spec.source == "spool" and spec.spool_lines_format and spec.consumed_dir:
        side_output(detections, CONSUMED).sink_to(_rolling_sink(spec.consumed_dir, "consumed")).name(
            "consumed-segments"
        ).uid("consumed-segments")


def side_output(stream: DataStream, tag: OutputTag) -> DataStream:
    """The side output ``tag`` of ``stream``, typed by the tag.

    PyFlink's ``get_side_output`` adds an identity ``map`` in Python behind it: a crossing into
    the interpreter per record, for records the Python operator has already typed.
    """
    return DataStream(stream._j_data_stream.getSideOutput(tag.get_java_output_tag()))


def _published_rule_set(store: Path, config_dir: Path, first: str | None = None) -> Any:
    """The published rule set to start with: ``first`` (the version the job was planned with),
    else the one ``current`` names or, when it does not load, the newest earlier one that does
    (each refusal logged and recorded); None when none does (the job uses its rule directories)."""
    from detectors.ruleset import RuleSetRefused, candidates, load_published, record_refusal

    for version in ([first] if first else []) + candidates(store):
        try:
            return load_published(store, version, config_dir)
        except RuleSetRefused as error:
            log_event(LOGGER, "ruleset_refused", logging.ERROR, version=version, reason=str(error),
                      reasons=error.reasons[:20])
            record_refusal(store, version, error.reasons, kept=None)
    return None


def _client_side_plan(spec: JobSpec) -> tuple[Any, str | None]:
    """The stateful plan (its shape decides the keyed operators), or None when it has no work; and
    the published version it was planned from (the operators start on it, so that their routing
    matches the keyed operators even when a set is published while the job is being built)."""
    from detectors.ruleset import plan_of
    from detectors.sigma.cache import load_engine

    published = _published_rule_set(Path(spec.ruleset_store), Path(spec.config_dir)) if spec.ruleset_store else None
    if published is not None:
        engine = published.engine
        plan = plan_of(published, Path(spec.config_dir))
    else:
        engine, _report, _ = load_engine([Path(p) for p in spec.rule_dirs], config_dir=Path(spec.config_dir))
        plan = build_plan(engine, spec.config_dir)
    has_work = bool(engine.correlations) or bool(plan.anomalies.detectors)
    return (plan if has_work else None), (published.version if published is not None else None)


def _spool_source(env: StreamExecutionEnvironment, spec: JobSpec) -> Any:
    segments = Path(spec.spool_dir) / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    if spec.spool_lines_format:
        lines = BulkFormat(java_class(spec.spool_lines_format).textLines())
        builder = FileSource.for_bulk_file_format(lines, str(segments))
    else:
        builder = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(segments))
    if spec.spool_split_assigner:
        # Oldest segment first: a backlog read out of order would make earlier events late.
        assigner = java_class(spec.spool_split_assigner).provider()
        builder = builder.set_split_assigner(FileSplitAssignerProvider(assigner))
    if not spec.bounded:
        builder = builder.monitor_continuously(Duration.of_millis(int(spec.monitor_interval_s * 1000)))
    source = builder.build()
    if spec.forgetful_file_source:
        # Flink's file source writes every path it ever read into each checkpoint; pruned ones can go.
        source = Source(java_class(spec.forgetful_file_source).of(source.get_java_function()))
    return env.from_source(source, WatermarkStrategy.no_watermarks(), "spool-segments").uid("spool-segments")


def _kafka_source(env: StreamExecutionEnvironment, spec: JobSpec) -> Any:
    """Kafka records carry the same batches as spool lines; offsets are checkpointed by Flink."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetResetStrategy, KafkaOffsetsInitializer, KafkaSource

    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(spec.kafka_bootstrap)
        .set_topics(spec.kafka_topic)
        .set_group_id(spec.kafka_group)
        .set_starting_offsets(KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST))
        .set_value_only_deserializer(SimpleStringSchema())
    )
    if spec.bounded:
        builder = builder.set_bounded(KafkaOffsetsInitializer.latest())
    return env.from_source(builder.build(), WatermarkStrategy.no_watermarks(), "kafka-events").uid("kafka-events")


def _rolling_sink(directory: str, prefix: str) -> FileSink:
    Path(directory).mkdir(parents=True, exist_ok=True)
    return (
        FileSink.for_row_format(directory, Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .with_output_file_config(OutputFileConfig.builder().with_part_prefix(prefix).with_part_suffix(".jsonl").build())
        .build()
    )


def run_job(spec: JobSpec) -> None:
    """Run the job in Flink's local runtime inside this process (blocks; bounded jobs end)."""
    level = logging.getLogger().level
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(spec))
    # Starting PyFlink's environment sets the root logger to WARNING (its Beam runtime does), which
    # silenced every INFO event of `socflow run` after this point: keep the level socflow set.
    logging.getLogger().setLevel(level)
    if spec.jars:
        # add_jars appends to pipeline.jars; overwriting it would drop the flink-python jar a
        # `flink run` client puts there, and the cluster could not load the Python operators.
        env.add_jars(*spec.jars)
    env.set_parallelism(spec.parallelism)
    build_job(env, spec)
    log_event(LOGGER, "job_starting", spec=asdict(spec))
    env.execute(spec.job_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``flink run -py``: the one argument is a JobSpec JSON file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m detectors.flink.job SPEC.json", file=sys.stderr)
        return 2
    run_job(JobSpec.from_json(Path(args[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
