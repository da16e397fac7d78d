"""Exception root of the ingest package; every error names where the bad input came from."""

from __future__ import annotations


class IngestError(Exception):
    """Root of all ingest errors. ``source`` names the input (path, peer) and position."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.reason = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class ParseError(IngestError):
    """A record could not be decoded or normalized; it belongs in the dead-letter output."""


class NotARecord(ParseError):  # noqa: N818 - not an error: a line that is no record
    """A line that carries no record but the format's own bookkeeping (a W3C ``#Fields:`` header):
    the collectors count it as skipped, neither an event nor a dead letter. A ParseError, so that
    a caller that knows only those still never lets it escape."""


class SpoolError(IngestError):
    """The spool on disk is unusable (not a torn tail, which is repaired silently)."""


class ConfigError(IngestError):
    """A configuration file (assets, logsources, settings) is invalid."""
