"""``socflow run``: the detection job on Flink's local runtime (or a bounded pass over the spool)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alerts.settings import REPO_ROOT, Settings
from deploy.flink import (
    EAGER_WATERMARKS,
    FORGETFUL_FILE_SOURCE,
    KEY_LEVEL_FILTER,
    SPOOL_LINES_FORMAT,
    SPOOL_SPLIT_ASSIGNER,
    SUBTASK_KEY,
    flink_home,
    jar_urls,
    kafka_connector_jars,
    socflow_flink_jar,
)
from deploy.java import find_java_home
from ingest.spool_prune import CONSUMED_DIR, SpoolPruner


def job_spec(settings: Settings, *, bounded: bool, parallelism: int | None = None,
             restore_from: Path | None = None, metrics: bool = False,
             kafka: str | None = None, topic: str = "socflow-events") -> object:
    """The JobSpec of the detection job for these settings (import kept local: pyflink is heavy)."""
    from detectors.flink.job import JobSpec

    java_home = settings.job.java_home or find_java_home(settings.stack)
    jars = tuple(jar_urls([socflow_flink_jar(java_home, settings.stack.cache_dir)]))
    assigner = lines_format = forgetful = ""
    if kafka:
        jars += tuple(jar_urls(kafka_connector_jars(settings.stack)))
    else:
        # The spool source reads a backlog of segments oldest first (see OrderedSplitAssigner)
        # and names each segment it read to its end (SegmentEndLines, for ingest.spool_prune).
        assigner = SPOOL_SPLIT_ASSIGNER
        lines_format = SPOOL_LINES_FORMAT
        forgetful = FORGETFUL_FILE_SOURCE  # its checkpoints leave out the segments pruned since
    return JobSpec(
        spool_dir=str(settings.spool_dir),
        alert_stream_dir=str(settings.alert_stream_dir),
        deadletter_dir=str(settings.deadletter_dir),
        checkpoint_dir=str(settings.checkpoint_dir),
        rule_dirs=tuple(str(settings.resolve(path)) for path in settings.job.rule_dirs),
        config_dir=str(REPO_ROOT / "config"),
        bounded=bounded,
        parallelism=parallelism or settings.job.parallelism,
        execution_mode=settings.job.execution_mode,
        checkpoint_interval_ms=settings.job.checkpoint_interval_ms,
        monitor_interval_s=settings.job.monitor_interval_s,
        metrics_port=settings.job.flink_metrics_port if metrics else 0,
        restore_from=str(restore_from) if restore_from else None,
        source="kafka" if kafka else "spool",
        kafka_bootstrap=kafka or "",
        kafka_topic=topic,
        jars=jars,
        spool_split_assigner=assigner,
        spool_lines_format=lines_format,
        consumed_dir=str(settings.spool_dir / CONSUMED_DIR),
        forgetful_file_source=forgetful,
        eager_watermarks=EAGER_WATERMARKS,
        key_level_filter=KEY_LEVEL_FILTER,
        subtask_key=SUBTASK_KEY,
        dedup_window_s=settings.job.dedup_window_s,
        dedup_entity_fields=settings.job.dedup_entity_fields,
        suppressions_paths=tuple(str(path) for path in settings.suppression_paths),
        ruleset_store=str(settings.ruleset_store_dir),
        reload_interval_s=settings.job.reload_interval_s,
        extra_config=dict(settings.job.flink_config),
    )


def prepare_java(settings: Settings) -> None:
    """PyFlink starts its JVM from JAVA_HOME; pin it to a JDK Flink 2.2 supports."""
    java_home = settings.job.java_home or find_java_home(settings.stack)
    os.environ["JAVA_HOME"] = str(java_home)
    # The embedded local runtime does not load Flink's plugins folder, so its Prometheus
    # reporter is found only on the JVM's classpath; PyFlink's launcher appends
    # HADOOP_CLASSPATH to it (pyflink_gateway_server.construct_hadoop_classpath).
    reporter = sorted((flink_home() / "plugins" / "metrics-prometheus").glob("flink-metrics-prometheus-*.jar"))
    if reporter:
        extra = os.environ.get("HADOOP_CLASSPATH", "")
        if str(reporter[0]) not in extra.split(os.pathsep):
            os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(p for p in (extra, str(reporter[0])) if p)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.flink.job import run_job

    prepare_java(settings)
    spec = job_spec(settings, bounded=args.bounded, parallelism=args.parallelism,
                    restore_from=args.restore, metrics=args.metrics, kafka=args.kafka, topic=args.topic)
    if not args.kafka and settings.job.spool_prune_after_s > 0:
        grace = settings.job.spool_prune_after_s
        SpoolPruner(settings.spool_dir, grace_s=grace, every_s=min(30.0, grace)).start()
    run_job(spec)  # type: ignore[arg-type]
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run the detection job on Flink (reads the spool, writes the alert stream)",
        description="Run the Flink detection job in Flink's local runtime. Without --bounded it keeps "
        "watching the spool for new segments; with it, it processes what is there and stops.")
    parser.add_argument("--bounded", action="store_true", help="process the current spool and stop")
    parser.add_argument("--parallelism", type=int, help="override job.parallelism")
    parser.add_argument("--restore", type=Path, metavar="CHK_DIR",
                        help="restore state from a retained checkpoint (…/chk-N)")
    parser.add_argument("--metrics", action="store_true",
                        help="expose Flink metrics through the Prometheus reporter (job.flink_metrics_port)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP",
                        help="read event batches from Kafka at BOOTSTRAP instead of the spool")
    parser.add_argument("--topic", default="socflow-events", help="Kafka topic (default: socflow-events)")
    parser.set_defaults(handler=handler)
