"""Prometheus metrics of the indexer and the console (``/metrics`` of ``socflow serve``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ALERTS_INDEXED = Counter("socflow_indexer_alerts_indexed_total", "Alert documents Elasticsearch acknowledged.",
                         ["outcome"])
BACKLOG_FILES = Gauge("socflow_indexer_backlog_files", "Committed alert-stream files not yet indexed.")
RETRIES = Counter("socflow_indexer_retries_total", "Bulk requests retried after an Elasticsearch failure.")
ERRORS = Counter("socflow_indexer_errors_total", "Indexing runs that gave up after all retries.")

CONSOLE_LOGINS = Counter("socflow_console_logins_total", "Login attempts on the console.", ["outcome"])
AUDIT_RECORDS = Counter("socflow_audit_records_total", "Audit records appended to the hash chain.", ["outcome"])
CONSOLE_ELASTICSEARCH_UP = Gauge("socflow_console_elasticsearch_up",
                                 "1 when the console last reached Elasticsearch, 0 when it did not.")
