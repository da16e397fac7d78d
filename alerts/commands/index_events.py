"""``socflow index events``: the event writer as a command (one pass, or ``--follow``)."""

from __future__ import annotations

import argparse
import logging
import time

from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alerts.errors import IndexingError
from alerts.eventstore import metrics
from alerts.eventstore.writer import EventStats, EventWriter
from alerts.indexer import connect
from alerts.settings import Settings
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)


def record(stats: EventStats) -> None:
    """Export one run's counts as Prometheus metrics."""
    for outcome, value in (("created", stats.indexed), ("already_present", stats.already_present),
                           ("repaired", stats.repaired), ("truncated", stats.truncated),
                           ("dead_lettered", stats.dead_lettered)):
        metrics.EVENTS.labels(outcome).inc(value)
    metrics.DEADLETTERS.labels("created").inc(stats.deadletters_stored)
    metrics.DEADLETTERS.labels("already_present").inc(stats.deadletters_present)
    metrics.RETRIES.inc(stats.retries)
    metrics.BACKLOG.set(stats.backlog_segments)


def build_writer(settings: Settings, args: argparse.Namespace | None = None) -> EventWriter:
    """The spool's writer, or with ``--kafka`` the topic's."""
    client = connect(settings.elasticsearch)
    if args is not None and getattr(args, "kafka", None):
        from alerts.eventstore.kafka_source import KafkaEventWriter

        return KafkaEventWriter(client, settings.spool_dir, settings.event_store, bootstrap=args.kafka,
                                topic=args.topic, group=args.group)
    return EventWriter(client, settings.spool_dir, settings.event_store)


def summary(stats: EventStats) -> str:
    return (f"stored {stats.indexed} new events, {stats.already_present} already present "
            f"({stats.repaired} with a refused field moved aside, {stats.truncated} truncated), "
            f"{stats.dead_lettered} to the dead letters; collectors' dead letters: {stats.deadletters_stored} new, "
            f"{stats.deadletters_present} already present")


def _once(writer: EventWriter) -> EventStats:
    console = Console(stderr=True)
    if not console.is_terminal:
        return writer.run_once()
    with Progress(TextColumn("[bold]store events"), BarColumn(), MofNCompleteColumn(), TextColumn("segments"),
                  TextColumn("{task.fields[events]} events"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("segments", total=None, events=0)

        def show(stats: EventStats) -> None:
            progress.update(task, total=stats.segments_done + stats.backlog_segments, completed=stats.segments_done,
                            events=stats.stored)

        writer.on_progress = show
        return writer.run_once()


def index_events(args: argparse.Namespace, settings: Settings) -> int:
    if args.metrics and settings.event_store.metrics_port:
        start_http_server(settings.event_store.metrics_port, addr="127.0.0.1")
    writer = build_writer(settings, args)
    if not args.follow:
        stats = _once(writer)
        record(stats)
        print(summary(stats))
        return 0
    while True:
        try:
            stats = writer.run_once(refresh=False)
        except IndexingError as error:
            metrics.ERRORS.inc()
            log_event(LOGGER, "event_store_paused", logging.ERROR, error=str(error)[:500])
            time.sleep(settings.event_store.max_backoff_s)
            continue
        record(stats)
        if stats.indexed or stats.already_present or stats.dead_lettered or stats.deadletters_stored:
            log_event(LOGGER, "events_stored", indexed=stats.indexed, already_present=stats.already_present,
                      repaired=stats.repaired, truncated=stats.truncated, dead_lettered=stats.dead_lettered,
                      deadletters=stats.deadletters_stored, segments=stats.segments_done)
        time.sleep(settings.event_store.poll_interval_s)
