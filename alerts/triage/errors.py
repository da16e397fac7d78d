"""Triage errors, under the alerts package's root (alerts.errors.AlertsError)."""

from __future__ import annotations

from typing import Any

from alerts.errors import AlertsError


class TriageError(AlertsError):
    """A triage action that cannot be done as asked (bad input or a forbidden transition)."""


class NotFoundError(TriageError):
    """No alert or incident of that id."""


class ConflictError(TriageError):
    """The document changed since the caller read it: ``current`` is its fresh state."""

    def __init__(self, message: str, *, current: dict[str, Any] | None, source: str | None = None) -> None:
        super().__init__(message, source=source)
        self.current = current


class StoreUnavailableError(TriageError):
    """Elasticsearch could not be reached or refused the request; nothing was written."""
