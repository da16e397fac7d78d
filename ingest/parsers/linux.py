"""Linux log lines: auth/sshd, sudo, auditd, and plain syslog-format files."""

from __future__ import annotations

from ingest.errors import ParseError
from ingest.schema import Event


def looks_like_audit(line: str) -> bool:
    return line.startswith("type=") and "msg=audit(" in line


def looks_like_auth(line: str) -> bool:
    return False


def looks_like_syslog(line: str) -> bool:
    return False


def parse_auth_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    raise ParseError("auth parser not built yet", source=source)


def parse_audit_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    raise ParseError("auditd parser not built yet", source=source)


def parse_syslog_file_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    raise ParseError("syslog file parser not built yet", source=source)
