"""Exception root of the alerts package."""

from __future__ import annotations


class AlertsError(Exception):
    """Root of alerts errors; ``source`` names the file, index or request concerned."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.reason = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class IndexingError(AlertsError):
    """Elasticsearch refused or could not be reached after all retries."""
