"""Web server access logs: nginx and Apache ``combined`` / ``common`` (and vhost-prefixed) lines.

``1.2.3.4 - user [22/Nov/2026:10:00:00 +0700] "GET /a?b=c HTTP/1.1" 200 512 "ref" "agent"``

Fields follow ECS (``source.ip``, ``http.request.method``, ``url.original``, ``url.path``,
``url.query``, ``http.response.status_code``, ``http.response.body.bytes``,
``http.request.referrer``, ``user_agent.original``); the Sigma logsource is
``{category: webserver}``. ``event.dataset`` is ``apache.access`` when the file name says
apache/httpd, else ``nginx.access`` (both servers write the same combined format).
A request line that is not ``METHOD TARGET VERSION`` (a TLS handshake sent to port 80, a
scanner's garbage) is kept whole in ``url.original``; only a line that is not an access log
line at all is a dead letter.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ingest.errors import ParseError
from ingest.schema import Event, format_timestamp

_LINE = re.compile(
    r'^(?:(?P<vhost>[^\s"]+) )?(?P<client>[^\s"]+) (?P<ident>\S+) (?P<user>\S+|"[^"]*") '
    r'\[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<size>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<extra>.*)$'
)
_SNIFF = re.compile(r'^\S+ \S+ \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "')
_SNIFF_VHOST = re.compile(r'^\S+ \S+ \S+ \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:')
# Lines of one second share their time text: strptime once per second, not once per line.
_TIMES: dict[str, str] = {}
_IP = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]+)$")


def looks_like_access(line: str) -> bool:
    return bool(_SNIFF.match(line) or _SNIFF_VHOST.match(line))


def _unescape(text: str) -> str:
    # nginx escapes '"' and '\\' and non-printable bytes as \xHH; keep \xHH as written.
    return text.replace('\\"', '"').replace("\\\\", "\\")


def parse_access_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:  # noqa: PLR0912, PLR0915 - field map
    match = _LINE.match(line)
    if not match:
        raise ParseError("not a combined/common access log line", source=source)
    stamp = _TIMES.get(match["time"])
    if stamp is None:
        try:
            stamp = format_timestamp(datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z"))
        except ValueError as error:
            raise ParseError(f"bad access log time {match['time']!r}", source=source) from error
        if len(_TIMES) > 4096:
            _TIMES.clear()
        _TIMES[match["time"]] = stamp
    lowered = hint.lower()
    server = "apache" if ("apache" in lowered or "httpd" in lowered) else "nginx"
    event: Event = {
        "@timestamp": stamp,
        "event": {"kind": "event", "category": ["web"], "module": server, "dataset": f"{server}.access",
                  "original": line},
        "socflow": {"logsource": {"category": "webserver"}},
    }
    client = match["client"]
    event["source"] = {"ip": client} if _IP.match(client) else {"address": client}
    user = match["user"].strip('"')
    if user and user != "-":
        event["user"] = {"name": user}
    http: dict[str, Any] = {}
    request = _unescape(match["request"])
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        method, target, version = parts
        http["request"] = {"method": method}
        http["version"] = version[5:]
        path, question, query = target.partition("?")
        event["url"] = {"original": target, "path": path}
        if question:
            event["url"]["query"] = query
    elif request and request != "-":
        event["url"] = {"original": request}
    response: dict[str, Any] = {}
    if match["status"] != "-":
        response["status_code"] = int(match["status"])
        event["event"]["outcome"] = "failure" if response["status_code"] >= 400 else "success"
    if match["size"] != "-":
        response["body"] = {"bytes": int(match["size"])}
    if response:
        http["response"] = response
    referrer = match["referrer"]
    if referrer and referrer != "-":
        http.setdefault("request", {})["referrer"] = _unescape(referrer)
    if http:
        event["http"] = http
    agent = match["agent"]
    if agent and agent != "-":
        event["user_agent"] = {"original": _unescape(agent)}
    if match["vhost"]:
        event["url"] = {**event.get("url", {}), "domain": match["vhost"].rsplit(":", 1)[0]}
    return str(event["event"]["dataset"]), event
