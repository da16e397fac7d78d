"""Video-conference MCU administration and audit log (Cisco TelePresence / Expressway style).

The province's video-conference system (the MCU in the data center and the endpoints of the
agencies and districts) logs every administrator session and configuration change as
``key="value"`` pairs, the way Cisco's VCS/Expressway configuration log and TelePresence MCU
audit log write them, one line per record with an RFC 3339 stamp and the host::

    2026-12-07T10:02:11+07:00 vc-mcu01 audit: Module="Web" Event="Admin Session Login Failure"
        User="admin" Src-ip="198.51.100.23" Src-port="51514" Level="1" UTCTime="2026-12-07 03:02:11,482"
    2026-12-07T10:09:40+07:00 vc-mcu01 audit: Module="API" Event="Configuration Changed" User="vtc-admin"
        Src-ip="10.10.250.15" Detail="xConfiguration Conference Streaming Address: rtmp://203.0.113.80/live"

(each one line, wrapped here). Events: ``Admin Session Start`` / ``Finish`` / ``Login
Failure`` (logons), ``Configuration Changed``, ``User Created`` / ``Deleted`` / ``Privilege
Changed``, ``Conference Created`` / ``Deleted``, ``Audit Log Cleared``. A value may hold an
escaped quote (``\\"``). The event time is ``UTCTime`` when present (the MCU's clock in UTC),
else the line's stamp.

ECS: ``event.action`` (the Event, lower-case with dashes: ``admin-session-login-failure``),
``event.category`` (authentication for sessions, configuration otherwise), ``event.outcome``
(failure for ``... Failure``), ``user.name``, ``source.ip`` / ``port``, ``host.name``; every
pair under ``mcu.audit`` by its own name (``Module``, ``Detail``...). Sigma logsource
``{product: mcu, service: audit}``.
"""

from __future__ import annotations

import re

from ingest.errors import ParseError
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.dns import endpoint
from ingest.schema import Event, format_timestamp, parse_timestamp, stable_id

LOGSOURCE = {"product": "mcu", "service": "audit"}
_LINE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?P<host>\S+) "
                   r"(?P<program>[\w.-]+)(?:\[\d+\])?: (?P<body>\w[\w-]*=\".*)$")
_PAIR = re.compile(r'(?<![\w-])([A-Za-z][\w-]*)="((?:[^"\\]|\\.)*)"')
_UTC = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:,(\d{1,6}))?$")


def _pairs(body: str, source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    position = 0
    for match in _PAIR.finditer(body):
        if body[position:match.start()].strip():
            raise ParseError(f"MCU audit record: stray text {body[position:match.start()].strip()[:40]!r}",
                             source=source)
        pairs.setdefault(match[1], match[2].replace('\\"', '"').replace("\\\\", "\\"))
        position = match.end()
    if body[position:].strip():
        raise ParseError(f"MCU audit record: unterminated or stray text {body[position:].strip()[:40]!r}",
                         source=source)
    return pairs


def _time(stamp: str, pairs: dict[str, str], source: str) -> str:
    utc = _UTC.match(pairs.get("UTCTime", ""))
    text = f"{utc[1]}T{utc[2]}.{(utc[3] or '0')[:6]}Z" if utc else stamp
    try:
        return format_timestamp(parse_timestamp(text))
    except (ValueError, OverflowError) as error:
        raise ParseError(f"bad MCU audit time {text[:40]!r}: {error}", source=source) from None


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    match = _LINE.match(line)
    if match is None:
        raise ParseError('not an MCU audit line (TIME HOST program: Key="value" ...)', source=source)
    pairs = _pairs(match["body"], source)
    name = pairs.get("Event")
    if not name:
        raise ParseError("MCU audit record without Event", source=source)
    timestamp = _time(match["time"], pairs, source)
    session = name.startswith(("Admin Session", "User Session"))
    event: Event = {
        "@timestamp": timestamp,
        "event": {"kind": "event", "module": "mcu", "dataset": "mcu.audit", "original": line,
                  "action": "-".join(name.lower().split()),
                  "category": ["authentication"] if session else ["configuration"],
                  "id": stable_id("mcu", match["host"], timestamp, line)},
        "host": {"name": match["host"]},
        "mcu": {"audit": pairs},
        "socflow": {"logsource": dict(LOGSOURCE)},
    }
    if name.endswith("Failure"):
        event["event"]["outcome"] = "failure"
    elif session or name.endswith(("Changed", "Created", "Deleted", "Cleared")):
        event["event"]["outcome"] = "success"
    if pairs.get("User"):
        event["user"] = {"name": pairs["User"]}
    if pairs.get("Src-ip"):
        event["source"] = endpoint(pairs["Src-ip"], pairs.get("Src-port"))
    return "mcu.audit", event


def looks_like(line: str) -> bool:
    match = _LINE.match(line)
    return match is not None and ' Event="' in match["body"]


FORMATS = (
    SourceFormat(
        name="mcu", title="Video-conference MCU admin sessions and configuration audit (key=\"value\")",
        logsource=LOGSOURCE,
        sample='2026-12-07T10:02:11+07:00 vc-mcu01 audit: Module="Web" Event="Admin Session Login Failure" '
               'User="admin" Src-ip="198.51.100.23" Src-port="51514" Level="1" UTCTime="2026-12-07 03:02:11,482"',
        parse=parse_line, looks_like=looks_like, aliases=("mcu-audit",)),
)
