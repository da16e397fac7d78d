"""systemd journal exported as JSON lines (``journalctl -o json``), one entry per line.

::

    {"__CURSOR":"s=...;i=1a2b","__REALTIME_TIMESTAMP":"1795341481123456","_HOSTNAME":"dc-jump01",
     "SYSLOG_IDENTIFIER":"sshd","_PID":"2211","PRIORITY":"6","SYSLOG_FACILITY":"4","_SYSTEMD_UNIT":"ssh.service",
     "_TRANSPORT":"syslog","MESSAGE":"Failed password for admin from 198.51.100.23 port 50122 ssh2"}

(one line, wrapped here)

Every value is a string, except ``MESSAGE`` (and other fields) holding bytes that are not valid
UTF-8, which journalctl writes as an array of numbers, and fields over 4096 bytes, which it
writes as ``null`` unless ``--all`` is given. An entry becomes the syslog message it stands for
(``SYSLOG_IDENTIFIER`` or ``_COMM`` the program, ``_PID`` / ``SYSLOG_PID``, ``_HOSTNAME``,
``SYSLOG_FACILITY`` and ``PRIORITY``) and goes through exactly the program enrichment of the
auth and syslog files (:func:`ingest.parsers.linux.enrich_program`, and before it the catalogue's
syslog hooks): an sshd failure from the journal is the same event, with the same logsource, as
from ``auth.log``. Added: ``systemd.unit`` / ``.transport``, ``process.executable``,
``host.id`` (the machine id), and an ``event.id`` from the entry's cursor, so a journal exported
twice gives the same ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.errors import ParseError
from ingest.normalize import epoch_timestamp, loads_object
from ingest.parsers import linux, syslog
from ingest.parsers.catalogue import SourceFormat
from ingest.schema import Event, stable_id

_MAX_EPOCH_US = 253_402_300_799_000_000  # the end of year 9999


def _text(entry: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = entry.get(name)
    if value is None:
        if required and name in entry:
            raise ParseError(f"{name} is null: journalctl leaves out values over 4096 bytes (export with --all)")
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, int) and 0 <= item <= 255 for item in value):
        return bytes(value).decode("utf-8", "replace")  # binary data: journalctl writes the bytes as numbers
    raise ParseError(f"{name} is neither a string nor an array of bytes but {type(value).__name__}")


def _int(text: str | None, low: int, high: int) -> int | None:
    return int(text) if text is not None and text.isdigit() and low <= int(text) <= high else None


def parse_entry(entry: dict[str, Any], line: str) -> tuple[str, Event]:
    stamp = _text(entry, "__REALTIME_TIMESTAMP")
    micros = _int(stamp, 0, _MAX_EPOCH_US)
    if micros is None:
        raise ParseError(f"bad or missing __REALTIME_TIMESTAMP {str(stamp)[:40]!r}")
    message_text = _text(entry, "MESSAGE", required=True)
    if message_text is None:
        raise ParseError("journal entry without MESSAGE")
    severity = _int(_text(entry, "PRIORITY"), 0, 7)
    facility = _int(_text(entry, "SYSLOG_FACILITY"), 0, 23)
    message = syslog.SyslogMessage(
        timestamp=epoch_timestamp(micros / 1e6), message=message_text,
        priority=facility * 8 + severity if facility is not None and severity is not None else None,
        hostname=_text(entry, "_HOSTNAME"), appname=_text(entry, "SYSLOG_IDENTIFIER") or _text(entry, "_COMM"),
        procid=_text(entry, "SYSLOG_PID") or _text(entry, "_PID"))
    event = syslog.to_event(message, line)
    if message.priority is None and severity is not None:
        event["log"]["syslog"]["severity"] = {"code": severity, "name": syslog.SEVERITIES[severity]}
    if (executable := _text(entry, "_EXE")) and "process" in event:
        event["process"]["executable"] = executable
    linux.enrich_program(event, message)
    systemd = {key: value for key, name in (("unit", "_SYSTEMD_UNIT"), ("transport", "_TRANSPORT"))
               if (value := _text(entry, name))}
    if systemd:
        event["systemd"] = systemd
    if (machine := _text(entry, "_MACHINE_ID")) and "host" in event:
        event["host"]["id"] = machine
    if cursor := _text(entry, "__CURSOR"):
        event["event"]["id"] = stable_id("journald", cursor)
    return str(event["event"].get("dataset", "journald")), event


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    try:
        return parse_entry(loads_object(line), line)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None


def looks_like(line: str) -> bool:
    return line.startswith("{") and '"__REALTIME_TIMESTAMP"' in line


_SAMPLE_TIME = int(datetime(2026, 11, 22, 9, 58, 1, 123456, tzinfo=UTC).timestamp() * 1_000_000)

FORMATS = (
    SourceFormat(
        name="journald", title="systemd journal as JSON (journalctl -o json): sshd, sudo and every program",
        logsource={"product": "linux"},
        sample='{"__CURSOR":"s=6b1f0c;i=1a2b;b=3c4d;m=5e6f;t=62a1;x=7a8b","__REALTIME_TIMESTAMP":"'
               f'{_SAMPLE_TIME}","_HOSTNAME":"dc-jump01","SYSLOG_IDENTIFIER":"sshd","_PID":"2211",'
               '"PRIORITY":"6","SYSLOG_FACILITY":"4","_SYSTEMD_UNIT":"ssh.service","_TRANSPORT":"syslog",'
               '"MESSAGE":"Failed password for admin from 198.51.100.23 port 50122 ssh2"}',
        parse=parse_line, looks_like=looks_like, aliases=("journal",)),
)
