"""``socflow index``: move committed alerts from the alert stream into Elasticsearch."""

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
        "index", help="index committed alerts into Elasticsearch (idempotent, resumable)",
        description="Read the alert stream the Flink job committed and index every alert into "
        "Elasticsearch under its deterministic id. Safe to run again: nothing is duplicated.")
    parser.add_argument("--follow", action="store_true", help="keep indexing new alerts as they are committed")
    parser.add_argument("--metrics", action="store_true", help="expose Prometheus metrics (indexer.metrics_port)")
    parser.set_defaults(handler=handler)
