"""Squid access log, native format (``logformat squid``), the proxy at the connection points.

``1796610131.512    245 10.20.1.15 TCP_MISS/200 5120 GET http://198.51.100.7/update/setup.exe -
HIER_DIRECT/198.51.100.7 application/octet-stream``

Columns: time (Unix seconds with milliseconds), elapsed milliseconds, client address, Squid
result code / HTTP status, bytes sent to the client, method, URL (``host:port`` for CONNECT),
user (``-`` when none), hierarchy code / peer, MIME type. Squid pads the elapsed column with
spaces. A ``squid`` access log in the ``combined`` format is read by the ``access`` parser.

ECS: ``url.*`` (original, scheme, domain, port, path, query, extension), ``http.request.method``,
``http.response.status_code`` / ``bytes`` / ``mime_type``, ``source.ip``, ``user.name``,
``destination.ip`` (the peer, when Squid went direct), ``event.action`` (the result code),
``event.duration``. Sigma logsource ``{category: proxy, product: squid}``; the field names of
SigmaHQ's proxy rules (``c-uri``, ``cs-host``, ``c-uri-extension``, ``cs-method``,
``sc-status``...) map onto these in ``config/sigma/ecs.yml``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ingest.errors import ParseError
from ingest.parsers import netcommon
from ingest.parsers.catalogue import SourceFormat
from ingest.schema import Event, format_timestamp

_LINE = re.compile(r"^(?P<time>\d{9,11}\.\d{3}) +(?P<elapsed>-?\d+) (?P<client>\S+) (?P<code>[A-Z_]+)/"
                   r"(?P<status>\d{3}) (?P<bytes>\d+) (?P<method>\S+) (?P<url>\S+) (?P<user>\S+) "
                   r"(?P<hierarchy>[A-Z_]+)/(?P<peer>\S+) (?P<mime>\S+)$")
_SNIFF = re.compile(r"^\d{9,11}\.\d{3} +-?\d+ \S+ [A-Z_]+/\d{3} \d+ ")


def looks_like(line: str) -> bool:
    return bool(_SNIFF.match(line))


def _url(target: str, method: str) -> dict[str, Any]:
    url: dict[str, Any] = {"original": target}
    if method == "CONNECT" and "://" not in target:
        host, _, port = target.rpartition(":")
        url["domain"] = host.strip("[]") or target
        if port.isdigit() and len(port) <= 5:
            url["port"] = int(port)
        return url
    try:
        parts = urlsplit(target)
        port_number = parts.port
    except ValueError:
        return url  # a URL Squid logged as it came; its parts are not trustworthy
    if parts.scheme:
        url["scheme"] = parts.scheme
    if parts.hostname:
        url["domain"] = parts.hostname
    if port_number is not None:
        url["port"] = port_number
    if parts.path:
        url["path"] = parts.path
        name = parts.path.rsplit("/", 1)[-1]
        if "." in name:
            url["extension"] = name.rsplit(".", 1)[-1].lower()
    if parts.query:
        url["query"] = parts.query
    return url


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    match = _LINE.match(line)
    if not match:
        raise ParseError("not a Squid native access log line", source=source)
    seconds = float(match["time"])
    try:
        stamp = format_timestamp(datetime.fromtimestamp(seconds, UTC))
    except (ValueError, OverflowError, OSError) as error:
        raise ParseError(f"bad Squid time {match['time']!r}", source=source) from error
    status = int(match["status"])
    method = match["method"]
    event: Event = {
        "@timestamp": stamp,
        "event": {"kind": "event", "category": ["network", "web"], "module": "squid", "dataset": "squid.access",
                  "action": match["code"].lower(), "original": line,
                  "outcome": "failure" if status >= 400 or "DENIED" in match["code"] else "success"},
        "socflow": {"logsource": {"category": "proxy", "product": "squid"}},
        "source": netcommon.endpoint(match["client"]),
        "url": _url(match["url"], method),
        "http": {"request": {"method": method}, "response": {"status_code": status, "bytes": int(match["bytes"])}},
        "squid": {"hierarchy_code": match["hierarchy"], "result_code": match["code"]},
    }
    if status == 0:
        del event["http"]["response"]["status_code"]  # no reply (aborted, or a CONNECT denied early)
    elapsed = int(match["elapsed"])
    if elapsed >= 0:
        event["event"]["duration"] = elapsed * 1_000_000
    if match["user"] != "-":
        event["user"] = {"name": match["user"]}
    peer = match["peer"]
    if peer != "-":
        event["destination"] = netcommon.endpoint(peer)
    if match["mime"] != "-":
        event["http"]["response"]["mime_type"] = match["mime"]
    return "squid.access", event


FORMATS = (SourceFormat(
    name="squid",
    title="Squid access log (native format)",
    logsource={"category": "proxy", "product": "squid"},
    sample="1796610131.512    245 10.20.1.15 TCP_MISS/200 5120 GET http://198.51.100.7/update/setup.exe - "
           "HIER_DIRECT/198.51.100.7 application/octet-stream",
    parse=parse_line, looks_like=looks_like),)
