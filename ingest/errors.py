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


class SkippedLineError(ParseError):
    """A line that is not an event by its format's definition (a log file's header or preamble):
    the collector counts it as skipped instead of dead-lettering it."""


class SpoolError(IngestError):
    """The spool on disk is unusable (not a torn tail, which is repaired silently)."""


class ConfigError(IngestError):
    """A configuration file (assets, logsources, settings) is invalid."""
