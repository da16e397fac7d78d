"""Exception root of the deploy package."""

from __future__ import annotations


class StackError(Exception):
    """A service could not be fetched, started or stopped.

    ``service`` names it; ``log_tail`` carries the last lines of its log so that the message
    alone tells an operator (or a failing test) why.
    """

    def __init__(self, message: str, *, service: str | None = None, log_tail: str = "") -> None:
        self.reason = message
        self.service = service
        self.log_tail = log_tail
        text = f"{service}: {message}" if service else message
        if log_tail:
            text += "\n--- last log lines ---\n" + log_tail
        super().__init__(text)


class ToolMissingError(StackError):
    """Java or Maven is not installed; tests skip on a developer machine, fail in CI."""
