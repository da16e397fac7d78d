"""Calls to Elasticsearch retried with exponential back-off (the alert indexer's and the event writer's).

429 and 5xx answers and connection failures are retried, ``initial_backoff_s`` doubling up to
``max_backoff_s``, at most ``max_retries`` times; then, or on any other refusal, an
IndexingError: the caller's position has not moved, so the next run resumes there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from elasticsearch import ApiError, TransportError

from alerts.errors import IndexingError
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RetrySettings(Protocol):
    max_retries: int
    initial_backoff_s: float
    max_backoff_s: float


def backoff(settings: RetrySettings, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...)."""
    return float(min(settings.max_backoff_s, settings.initial_backoff_s * 2 ** (attempt - 1)))


def call_with_retries(call: Callable[[], Any], settings: RetrySettings, *, sleep: Callable[[float], None],
                      on_retry: Callable[[], None]) -> Any:
    """``call()``, retried as the module docstring says; ``on_retry`` counts each retry."""
    attempt = 0
    while True:
        try:
            return call()
        except (TransportError, ApiError) as error:
            status = getattr(error, "status_code", None) or getattr(getattr(error, "meta", None), "status", None)
            if isinstance(error, ApiError) and status not in RETRYABLE_STATUS:
                raise IndexingError(f"Elasticsearch refused the request: {error}") from error
            attempt += 1
            if attempt > settings.max_retries:
                raise IndexingError(f"Elasticsearch unavailable after {attempt - 1} retries: {error}") from error
            on_retry()
            delay = backoff(settings, attempt)
            log_event(LOGGER, "elasticsearch_retry", logging.WARNING, attempt=attempt, delay_s=delay,
                      error=str(error)[:500])
            sleep(delay)
