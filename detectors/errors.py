"""Exception root of the detectors package."""

from __future__ import annotations


class DetectorError(Exception):
    """Root of detectors errors; ``source`` names the rule file or record concerned."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.reason = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class RuleLoadError(DetectorError):
    """A rule could not be parsed, compiled or checked."""


class NativeBuildError(DetectorError):
    """The compiled build of the Sigma engine could not be made (the sources still run)."""
