"""IIS W3C extended log files (the portal's and agencies' sites, Exchange OWA / EWS).

::

    #Software: Microsoft Internet Information Services 10.0
    #Version: 1.0
    #Date: 2026-12-07 02:00:00
    #Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) ...
    2026-12-07 02:00:01 10.30.0.10 GET /dichvucong/tra-cuu ma=HG1 443 - 10.20.1.15 Mozilla/5.0+(Windows...) ...

The ``#Fields:`` directive names the columns of the lines after it; IIS writes the directives
again whenever it reopens the file or its field set changes, so a header in the middle of a
file switches the columns from there on. Custom fields (IIS 8.5+ custom logging, e.g.
``X-Forwarded-For``) are columns like the others and kept under ``iis.<name>``. Directive lines
are no events: they are counted as skipped (:class:`ingest.errors.SkippedLineError`). A file read
without its header (``--format iis`` on a headerless export, or a collector restarted in the
middle of a file) uses the first ``#Fields:`` line of the file, else IIS's default field set;
a line whose value count differs from the columns' is a dead letter saying so.

Values never hold spaces: IIS writes ``+`` for a space in the user agent and cookie, and ``-``
for an empty value. Times are UTC. Fields follow ECS like the nginx/Apache parser, with
``iis.sub_status``, ``iis.win32_status``, ``iis.site_name``; the Sigma logsource is
``{category: webserver, service: iis}``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ingest.errors import ParseError, SkippedLineError
from ingest.parsers.catalogue import SourceFormat
from ingest.schema import Event, format_timestamp, get_field, set_field

# IIS's default W3C field set (IIS 7.5 - 10), for files read without their #Fields header.
DEFAULT_FIELDS = ("date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port", "cs-username",
                  "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status", "sc-substatus", "sc-win32-status",
                  "time-taken")
DIRECTIVES = ("#Software:", "#Version:", "#Date:", "#Fields:", "#Remark:", "#Start-Date:", "#End-Date:")
_COLUMNS: dict[str, tuple[str, ...]] = {}  # file path -> the columns its latest #Fields header named
_HEAD_BYTES = 65_536
_STAMPS: dict[str, str] = {}


# A record of IIS's default field set (date time s-ip cs-method cs-uri-stem ...): a file whose
# header was cut off by rotation or a relay.
_DEFAULT_RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [0-9A-Fa-f.:]+ [A-Z]{3,10} /\S* \S+ \d{1,5} ")


def looks_like(line: str) -> bool:
    return line.startswith(("#Software: Microsoft Internet Information Services", "#Fields: date time s-",
                            "#Fields: date time c-ip ")) or bool(_DEFAULT_RECORD.match(line))


def _columns_for(path: str) -> tuple[str, ...]:
    found = _COLUMNS.get(path)
    if found is not None:
        return found
    found = DEFAULT_FIELDS
    if path:
        try:
            with open(path, "rb") as handle:
                head = handle.read(_HEAD_BYTES).decode("utf-8", "replace")
        except OSError:
            head = ""
        for line in head.splitlines():
            if line.startswith("#Fields:"):
                found = tuple(line[8:].split())
                break
    _remember(path, found)
    return found


def _remember(path: str, columns: tuple[str, ...]) -> None:
    if len(_COLUMNS) > 10_000:
        _COLUMNS.clear()  # paths of rotated files pile up in a long-running collector
    _COLUMNS[path] = columns


def _time(date: str, clock: str) -> str:
    key = f"{date} {clock}"
    stamp = _STAMPS.get(key)
    if stamp is None:
        try:
            moment = datetime.strptime(key, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError as error:
            raise ParseError(f"bad W3C date/time {key[:40]!r}") from error
        if len(_STAMPS) > 4096:
            _STAMPS.clear()
        stamp = _STAMPS[key] = format_timestamp(moment)
    return stamp


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 18 else None


# W3C field -> (ECS path, whether the value is an integer). Other fields go under iis.<name>.
_ECS: dict[str, tuple[str, bool]] = {
    "c-ip": ("source.ip", False), "s-ip": ("destination.ip", False), "s-port": ("destination.port", True),
    "cs-method": ("http.request.method", False), "cs-uri-stem": ("url.path", False),
    "cs-uri-query": ("url.query", False), "cs-username": ("user.name", False),
    "cs(Referer)": ("http.request.referrer", False), "cs-host": ("url.domain", False),
    "sc-status": ("http.response.status_code", True), "sc-bytes": ("http.response.bytes", True),
    "cs-bytes": ("http.request.bytes", True), "s-computername": ("host.name", False),
    "s-sitename": ("iis.site_name", False), "sc-substatus": ("iis.sub_status", True),
    "sc-win32-status": ("iis.win32_status", True),
}


def to_event(values: dict[str, str], line: str) -> Event:  # noqa: PLR0912 - a few fields need their own form
    date, clock = values.get("date"), values.get("time")
    if not clock:
        raise ParseError("W3C line without a time column")
    if not date:
        raise ParseError("W3C line without a date column")  # IIS always writes both; W3C allows #Date instead
    event: Event = {
        "@timestamp": _time(date, clock),
        "event": {"kind": "event", "category": ["web"], "module": "iis", "dataset": "iis.access", "original": line},
        "socflow": {"logsource": {"category": "webserver", "service": "iis"}},
    }
    for name, value in values.items():
        if value == "-" or name in ("date", "time"):
            continue
        target = _ECS.get(name)
        if target is not None:
            path, integer = target
            if not integer:
                set_field(event, path, value)
            elif _int(value) is not None:
                set_field(event, path, int(value))
        elif name == "cs-version":
            set_field(event, "http.version", value.removeprefix("HTTP/"))
        elif name == "cs(User-Agent)":
            event["user_agent"] = {"original": value.replace("+", " ")}
        elif name == "time-taken" and _int(value) is not None:
            event["event"]["duration"] = int(value) * 1_000_000
        else:
            set_field(event, f"iis.{name.replace('.', '_')}", value)  # cs(Cookie), custom fields, s-* extras
    url = event.get("url")
    if url and "path" in url:
        url["original"] = url["path"] + ("?" + url["query"] if "query" in url else "")
    status = get_field(event, "http.response.status_code")
    if isinstance(status, int):
        event["event"]["outcome"] = "failure" if status >= 400 else "success"
    return event


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    if line.startswith("#"):
        if line.startswith("#Fields:"):
            columns = tuple(line[8:].split())
            if not columns:
                raise ParseError("empty #Fields directive", source=source)
            _remember(hint, columns)
        elif not line.startswith(DIRECTIVES):
            raise ParseError("not a W3C directive", source=source)
        raise SkippedLineError("W3C directive", source=source)
    columns = _columns_for(hint)
    parts = line.split(" ")
    if len(parts) != len(columns):
        raise ParseError(f"{len(parts)} values for the {len(columns)} #Fields columns", source=source)
    try:
        event = to_event(dict(zip(columns, parts, strict=True)), line)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    return "iis.access", event


FORMATS = (SourceFormat(
    name="iis",
    title="IIS W3C extended log files (#Fields header; Exchange OWA/EWS too)",
    logsource={"category": "webserver", "service": "iis"},
    sample="2026-12-07 02:00:01 10.30.0.10 POST /owa/auth.owa - 443 - 203.0.113.45 "
           "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) https://mail.hoagiang.gov.vn/owa/ 302 0 0 31",
    parse=parse_line, looks_like=looks_like, aliases=("w3c",)),)
