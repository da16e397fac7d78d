"""Parsers of text log lines, and the sniffing that picks one for a file.

A line parser is ``parse(line, *, source, hint) -> (format, event)``: ``format`` names what
was parsed (``json``, ``zeek``, ``nginx.access``, ...) for metrics, ``hint`` is the file path
(some formats, like Zeek, are named by their file). It raises :class:`ingest.errors.ParseError`
with the reason for a bad line, never anything else: the caller turns that into a dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import catalogue, jsonlog, linux, web
from ingest.parsers.catalogue import LineParser
from ingest.schema import Event

PARSERS: dict[str, LineParser] = {
    "json": jsonlog.parse_json_line,
    "auth": linux.parse_auth_line,
    "auditd": linux.parse_audit_line,
    "access": web.parse_access_line,
    "syslog": linux.parse_syslog_file_line,
    **catalogue.line_parsers(),  # the formats of ingest.parsers.catalogue.MODULES
}

FORMATS = ("auto", *PARSERS)


def sniff(lines: Sequence[str], path: str = "") -> str:  # noqa: PLR0911 - first match wins
    """The parser name for a file from its first non-empty lines (``json`` when unsure)."""
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        catalogued = catalogue.sniff_line(stripped)  # vendor formats are more specific than syslog
        if catalogued is not None:
            return catalogued
        if stripped.startswith("{"):
            return "json"
        if linux.looks_like_audit(stripped):
            return "auditd"
        if web.looks_like_access(stripped):
            return "access"
        if linux.looks_like_auth(stripped):
            return "auth"
        if linux.looks_like_syslog(stripped):
            return "syslog"
        return "json"
    name = path.rsplit("/", 1)[-1]
    if name.startswith(("auth", "secure")):
        return "auth"
    if name.startswith("audit"):
        return "auditd"
    if "access" in name:
        return "access"
    return "json"


def parse_line(fmt: str, line: str, *, source: str, hint: str = "", **options: Any) -> tuple[str, Event]:
    """Parse ``line`` as ``fmt``; ``options`` (``zone``...) go to parsers that take them."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise ParseError(f"unknown format {fmt!r}", source=source)
    return parser(line, source=source, hint=hint, **options)
