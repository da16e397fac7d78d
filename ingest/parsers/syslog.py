"""Syslog messages: RFC 5424, RFC 3164 (BSD) and the syslog lines of Linux log files.

:func:`parse_message` reads one message as a syslog server receives it (``<PRI>`` first);
:func:`parse_file_line` reads a line of ``/var/log/auth.log`` and friends (no PRI). Both
return a :class:`SyslogMessage`; :func:`to_event` turns it into an ECS event with
``log.syslog.*``, ``host.name``, ``process.name`` / ``process.pid`` and ``message``; the
program-specific parsers in :mod:`ingest.parsers.linux` then add users, addresses and the
Sigma logsource.

Time: RFC 5424 and RFC 3339 stamps carry their zone. BSD stamps (``Nov 22 10:00:00``) carry
neither zone nor year: the zone is the configured sender zone, and the year is the one that
puts the stamp closest to the reception time (a December message received on 1 January
belongs to last year).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from ingest.errors import ParseError
from ingest.schema import Event, format_timestamp, parse_timestamp

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
              "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
              "local4", "local5", "local6", "local7")
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
_MONTHS = {name: index for index, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}

_PRI = re.compile(r"<(\d{1,3})>")
_BSD_STAMP = re.compile(r"([A-Za-z]{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: (\d{4}))? ")
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) ")
_TAG = re.compile(r"([^\s:\[\]]{1,64})(?:\[([^\]\s]{0,32})\])?:(?: |$)")
_SD_NAME = re.compile(r'[^\s=\]"]{1,32}')


@dataclass
class SyslogMessage:
    """One decoded syslog message; ``None`` stands for the nil value ``-`` of RFC 5424."""

    timestamp: str
    message: str
    priority: int | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    version: int | None = None  # 1 for RFC 5424, None for BSD
    zone: tzinfo = UTC  # the configured sender zone, for zone-less stamps inside the message (Cisco ASA...)

    @property
    def facility(self) -> int | None:
        return None if self.priority is None else self.priority >> 3

    @property
    def severity(self) -> int | None:
        return None if self.priority is None else self.priority & 7


def _nil(value: str) -> str | None:
    return None if value == "-" else value


_BSD_CACHE: dict[tuple[str, int, str], str] = {}


def _bsd_time(match: re.Match[str], received: datetime, zone: tzinfo) -> str:
    # Messages of one second share their stamp; the year choice only needs the reception day.
    key = (match[0], received.toordinal(), str(zone))
    cached = _BSD_CACHE.get(key)
    if cached is None:
        if len(_BSD_CACHE) > 4096:
            _BSD_CACHE.clear()
        cached = _BSD_CACHE[key] = _bsd_time_uncached(match, received, zone)
    return cached


def _bsd_time_uncached(match: re.Match[str], received: datetime, zone: tzinfo) -> str:
    month = _MONTHS.get(match[1].lower())
    if month is None:
        raise ParseError(f"bad month {match[1]!r}")
    day, hour, minute, second = int(match[2]), int(match[3]), int(match[4]), int(match[5])
    micro = int((match[6] or "0").ljust(6, "0"))
    local_received = received.astimezone(zone)
    years = [int(match[7])] if match[7] else [local_received.year - 1, local_received.year, local_received.year + 1]
    best: datetime | None = None
    for year in years:
        try:
            moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        except ValueError:
            continue  # Feb 29 of a non-leap year, or a day that does not exist
        if best is None or abs(moment - received) < abs(best - received):
            best = moment
    if best is None:
        raise ParseError(f"impossible date {match[0].strip()!r}")
    return format_timestamp(best)


def _rfc3339(text: str) -> str:
    try:
        return format_timestamp(parse_timestamp(text))
    except (ValueError, OverflowError) as error:
        raise ParseError(f"bad timestamp {text!r}: {error}") from error


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:  # noqa: PLR0912 - RFC grammar
    """RFC 5424 STRUCTURED-DATA at the start of ``text``; returns it and the rest."""
    if text.startswith("- ") or text == "-":
        return {}, text[2:]
    elements: dict[str, dict[str, str]] = {}
    index = 0
    length = len(text)
    while index < length and text[index] == "[":
        match = _SD_NAME.match(text, index + 1)
        if not match:
            raise ParseError("bad structured data: no SD-ID")
        sd_id = match[0]
        params: dict[str, str] = {}
        index = match.end()
        while True:
            if index >= length:
                raise ParseError("bad structured data: unterminated element")
            if text[index] == "]":
                index += 1
                break
            if text[index] != " ":
                raise ParseError(f"bad structured data at {index}")
            name = _SD_NAME.match(text, index + 1)
            if not name or text[name.end(): name.end() + 2] != '="':
                raise ParseError("bad structured data: expected PARAM-NAME=\"...\"")
            index = name.end() + 2
            value: list[str] = []
            while True:
                if index >= length:
                    raise ParseError("bad structured data: unterminated value")
                char = text[index]
                if char == "\\" and index + 1 < length and text[index + 1] in '"\\]':
                    value.append(text[index + 1])
                    index += 2
                elif char == '"':
                    index += 1
                    break
                else:
                    value.append(char)
                    index += 1
            params[name[0]] = "".join(value)
        elements[sd_id] = params
    if index < length and text[index] == " ":
        index += 1
    elif index < length:
        raise ParseError("bad structured data: no space before MSG")
    return elements, text[index:]


def _parse_5424(priority: int, rest: str, received: datetime) -> SyslogMessage:
    # VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
    parts = rest.split(" ", 6)
    if len(parts) < 7:
        if len(parts) == 6 and parts[5]:
            parts.append("-")  # no SD and no MSG at all: tolerate
        else:
            raise ParseError("RFC 5424 header incomplete")
    version, stamp, hostname, appname, procid, msgid, tail = parts
    structured, message = parse_structured_data(tail)
    if message.startswith("\ufeff"):
        message = message[1:]  # the BOM that marks UTF-8 MSG
    # A nil timestamp means the sender had no clock: reception time is the best we know.
    timestamp = format_timestamp(received) if stamp == "-" else _rfc3339(stamp)
    if not version.isdigit():
        raise ParseError(f"bad RFC 5424 version {version!r}")
    return SyslogMessage(timestamp=timestamp, message=message, priority=priority, hostname=_nil(hostname),
                         appname=_nil(appname), procid=_nil(procid), msgid=_nil(msgid),
                         structured_data=structured, version=int(version))


def _parse_bsd(priority: int | None, rest: str, received: datetime, zone: tzinfo) -> SyslogMessage:
    match = _BSD_STAMP.match(rest)
    if match:
        stamp = _bsd_time(match, received, zone)
        rest = rest[match.end():]
    else:
        match = _RFC3339.match(rest)
        if match:
            stamp = _rfc3339(match[1])
            rest = rest[match.end():]
        elif priority is not None:
            # RFC 3164 section 4.3.2: a relay fills in what the sender left out.
            return SyslogMessage(timestamp=format_timestamp(received), message=rest, priority=priority, zone=zone)
        else:
            raise ParseError("no syslog timestamp")
    hostname: str | None = None
    tag = _TAG.match(rest)
    if not tag:
        # "HOST TAG[PID]: msg" (the usual) rather than "TAG[PID]: msg" (a local sender).
        host, separator, after = rest.partition(" ")
        if host and separator:
            hostname, rest = host, after
            tag = _TAG.match(rest)
    appname = procid = None
    if tag:
        appname, procid = tag[1], tag[2] or None
        rest = rest[tag.end():]
    return SyslogMessage(timestamp=stamp, message=rest, priority=priority, hostname=hostname,
                         appname=appname, procid=procid, zone=zone)


def parse_message(text: str, *, received: datetime, zone: tzinfo = UTC) -> SyslogMessage:
    """One message as received by a syslog server (PRI, then RFC 5424 or BSD)."""
    match = _PRI.match(text)
    if not match:
        raise ParseError("no <PRI> at the start of the message")
    priority = int(match[1])
    if priority > 191:
        raise ParseError(f"PRI {priority} out of range")
    rest = text[match.end():]
    if rest[:2] == "1 ":
        return _parse_5424(priority, rest, received)
    return _parse_bsd(priority, rest, received, zone)


def parse_file_line(text: str, *, received: datetime, zone: tzinfo = UTC) -> SyslogMessage:
    """One line of a syslog-format log file (``auth.log``, ``secure``, ``syslog``...)."""
    if text.startswith("<"):
        return parse_message(text, received=received, zone=zone)
    return _parse_bsd(None, text, received, zone)


def to_event(message: SyslogMessage, original: str) -> Event:
    """The ECS shape of a syslog message (``log.syslog.*``); programs add their own fields."""
    syslog: dict[str, Any] = {}
    if message.priority is not None:
        facility, severity = message.facility or 0, message.severity or 0
        syslog["priority"] = message.priority
        syslog["facility"] = {"code": facility, "name": FACILITIES[facility] if facility < len(FACILITIES) else ""}
        syslog["severity"] = {"code": severity, "name": SEVERITIES[severity]}
    if message.version is not None:
        syslog["version"] = str(message.version)
    if message.hostname:
        syslog["hostname"] = message.hostname
    if message.appname:
        syslog["appname"] = message.appname
    if message.procid:
        syslog["procid"] = message.procid
    if message.msgid:
        syslog["msgid"] = message.msgid
    if message.structured_data:
        syslog["structured_data"] = message.structured_data
    event: Event = {
        "@timestamp": message.timestamp,
        "event": {"kind": "event", "original": original, "dataset": "syslog"},
        "message": message.message,
        "log": {"syslog": syslog},
    }
    if message.hostname:
        event["host"] = {"hostname": message.hostname, "name": message.hostname}
    if message.appname:
        process: dict[str, Any] = {"name": message.appname}
        if message.procid and message.procid.isdigit():
            process["pid"] = int(message.procid)
        event["process"] = process
    return event
