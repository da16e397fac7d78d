"""Prometheus metrics of the event writer (``socflow index events --metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter("socflow_event_store_events_total", "Events the event writer handled, by outcome "
                 "(created, already_present, repaired, truncated, dead_lettered).", ["outcome"])
DEADLETTERS = Counter("socflow_event_store_deadletters_total", "Collector dead letters stored, by outcome.",
                      ["outcome"])
BACKLOG = Gauge("socflow_event_store_backlog_segments", "Sealed spool segments not yet stored.")
RETRIES = Counter("socflow_event_store_retries_total", "Requests retried after an Elasticsearch failure.")
ERRORS = Counter("socflow_event_store_errors_total", "Writer runs that gave up after all retries.")
BULK_SECONDS = Counter("socflow_event_store_bulk_seconds_total", "Seconds spent in bulk requests.")
