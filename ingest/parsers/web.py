"""Web server access logs: nginx and Apache combined / common formats."""

from __future__ import annotations

from ingest.errors import ParseError
from ingest.schema import Event


def looks_like_access(line: str) -> bool:
    return False


def parse_access_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    raise ParseError("access log parser not built yet", source=source)
