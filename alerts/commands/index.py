"""``socflow index [alerts|events]``: move committed alerts, or every collected event, into Elasticsearch.

``alerts`` (the default) reads the alert stream the Flink job commits (``alerts.indexer``);
``events`` reads the spool segments the collectors commit and stores every event in the event
store (``alerts.eventstore.writer``). Both are idempotent and resumable, and ``--follow`` keeps
them running through Elasticsearch outages.
"""

from __future__ import annotations

import argparse
import logging
import time

from prometheus_client import start_http_server

from alerts import metrics
from alerts.errors import IndexingError
from alerts.indexer import Indexer, IndexStats, connect
from alerts.nodes import NodeResolver
from alerts.settings import Settings
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)


def build_indexer(settings: Settings) -> Indexer:
    return Indexer(connect(settings.elasticsearch), settings.alert_stream_dir, settings.data_dir / "indexer",
                   settings.elasticsearch, settings.indexer, node_of_group=NodeResolver.load(settings.collector))


def record(stats: IndexStats, previous: IndexStats) -> None:
    """Export one run's counts as Prometheus metrics (counters take the increase)."""
    metrics.ALERTS_INDEXED.labels("created").inc(stats.indexed - previous.indexed)
    metrics.ALERTS_INDEXED.labels("already_present").inc(stats.already_present - previous.already_present)
    metrics.ALERTS_INDEXED.labels("rejected").inc(stats.rejected - previous.rejected)
    metrics.RETRIES.inc(stats.retries - previous.retries)
    metrics.BACKLOG_FILES.set(stats.backlog_files)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.what == "events":
        from alerts.commands.index_events import index_events

        return index_events(args, settings)
    if args.kafka:
        raise IndexingError("--kafka is for `socflow index events`: the alert indexer reads the alert stream")
    if args.metrics and settings.indexer.metrics_port:
        start_http_server(settings.indexer.metrics_port, addr="127.0.0.1")
    indexer = build_indexer(settings)
    while True:
        try:
            stats = indexer.run_once()
        except IndexingError as error:
            metrics.ERRORS.inc()
            if not args.follow:
                raise
            log_event(LOGGER, "indexing_paused", logging.ERROR, error=str(error))
            time.sleep(settings.indexer.max_backoff_s)
            continue
        record(stats, IndexStats())
        if stats.indexed or stats.already_present or stats.rejected:
            log_event(LOGGER, "alerts_indexed", indexed=stats.indexed, already_present=stats.already_present,
                      rejected=stats.rejected, files=stats.files_done)
        if not args.follow:
            print(f"indexed {stats.indexed} new alerts, {stats.already_present} already present, "
                  f"{stats.rejected} rejected (see {indexer.deadletter_path})")
            return 0 if not stats.rejected else 1
        time.sleep(settings.indexer.poll_interval_s)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="index committed alerts (or, `index events`, every event) into Elasticsearch",
        description="`socflow index` (or `index alerts`) reads the alert stream the Flink job committed and "
        "indexes every alert under its deterministic id. `socflow index events` reads the spool segments the "
        "collectors committed and stores every event in the event store (<event_store.index_prefix>-YYYY.MM.DD, "
        "_id = event.id) and the collectors' dead letters in <event_store.deadletter_prefix>-*. Both resume "
        "where they stopped and are safe to run again: nothing is duplicated.")
    parser.add_argument("what", nargs="?", choices=("alerts", "events"), default="alerts",
                        help="alerts (default): the alert stream; events: the spool's events")
    parser.add_argument("--follow", action="store_true", help="keep going as new alerts or segments are committed")
    parser.add_argument("--metrics", action="store_true",
                        help="expose Prometheus metrics (indexer.metrics_port, event_store.metrics_port)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP",
                        help="events only: read the Kafka topic the collectors send to instead of the spool")
    parser.add_argument("--topic", default="socflow-events", help="events only: Kafka topic (with --kafka)")
    parser.add_argument("--group", default="socflow-event-store",
                        help="events only: Kafka consumer group of the event writer (with --kafka)")
    parser.set_defaults(handler=handler)
