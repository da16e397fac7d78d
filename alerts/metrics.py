"""Prometheus metrics of the indexer."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ALERTS_INDEXED = Counter("socflow_indexer_alerts_indexed_total", "Alert documents Elasticsearch acknowledged.",
                         ["outcome"])
BACKLOG_FILES = Gauge("socflow_indexer_backlog_files", "Committed alert-stream files not yet indexed.")
RETRIES = Counter("socflow_indexer_retries_total", "Bulk requests retried after an Elasticsearch failure.")
ERRORS = Counter("socflow_indexer_errors_total", "Indexing runs that gave up after all retries.")
