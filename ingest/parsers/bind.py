"""BIND 9 query logs (``category queries``), from a file channel or from syslog.

A file channel with ``print-time yes; print-category yes; print-severity yes;`` writes::

    22-Nov-2026 10:00:00.123 queries: info: client @0x7f3a1c0b2d40 10.10.1.25#53124 (www.example.com):
        query: www.example.com IN A +E(0)K (10.10.0.53)

BIND before 9.11 writes no ``@0x...`` client object, and without ``print-category`` /
``print-severity`` the ``queries: info:`` part is absent. Through syslog the same text follows
``named[PID]:`` (the syslog hook). The flags after the type: ``+`` recursion desired (``-``
not), ``S`` signed, ``E(n)`` EDNS version n, ``T`` TCP, ``D`` DNSSEC OK, ``C`` checking
disabled, ``V`` valid server cookie, ``K`` cookie; the last parenthesis is the address the query
was received on. The time of a file channel is the server's local time without a zone: read in
the file source's ``timezone`` (``collector.files``), UTC by default. Event: ``dns.*`` (see
:mod:`ingest.parsers.dns`), ``source.ip/port`` the client, ``destination.ip`` and ``host.ip``
the server (so the inventory finds the DNS server's node, not the client's), ``bind.view``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from ingest.errors import ParseError
from ingest.parsers import dns, linux
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.stamps import local_stamp
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event

_QUERY = re.compile(
    r"client (?:@0x[0-9a-fA-F]+ )?(?P<ip>[0-9a-fA-F.:]+)#(?P<port>\d+)(?: \((?P<label>[^)]*)\))?: "
    r"(?:view (?P<view>[^:]+): )?query: (?P<name>\S+) (?P<class>\S+) (?P<type>\S+) (?P<flags>[-+]\S*)"
    r"(?: \((?P<server>[^)]*)\))?\s*$")
_FILE_HEAD = re.compile(r"(?P<time>\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?) "
                        r"(?:(?P<category>[\w-]+): (?P<severity>[\w ]+?): )?")


def _time(text: str, zone: tzinfo) -> str:
    seconds, _, fraction = text.partition(".")
    return local_stamp(seconds, fraction, "%d-%b-%Y %H:%M:%S", zone, what="BIND")


def query_event(text: str, *, timestamp: str, original: str) -> Event | None:
    """The event of a query log message (after any time/category prefix); None if it is not one."""
    match = _QUERY.search(text)
    if match is None:
        return None
    event = dns.dns_event(timestamp=timestamp, module="bind", original=original, kind="query",
                          name=match["name"], qtype=match["type"], qclass=match["class"])
    event["event"]["action"] = "dns_query"
    event["source"] = dns.endpoint(match["ip"], match["port"])
    if match["server"]:
        event["destination"] = dns.endpoint(match["server"])
        if dns.is_ip(match["server"]):
            # The address the query came in on is the server's own: the node that logged it.
            event["host"] = {"ip": [match["server"]]}
    flags = match["flags"]
    header = [flag for letter, flag in (("+", "RD"), ("D", "DO"), ("C", "CD")) if letter in flags]
    if header:
        event["dns"]["header_flags"] = header
    event["network"]["transport"] = "tcp" if "T" in flags else "udp"
    bind: dict[str, str] = {"flags": flags}
    if match["view"]:
        bind["view"] = match["view"]
    event["bind"] = bind
    return event


def parse_line(line: str, *, source: str, hint: str = "", received: datetime | None = None,
               zone: tzinfo = UTC) -> tuple[str, Event]:
    """A line of a BIND file channel (its time in ``zone``), or a syslog line carrying ``named`` messages."""
    head = _FILE_HEAD.match(line)
    if head is None:
        return linux.parse_syslog_file_line(line, source=source, hint=hint, received=received, zone=zone)
    try:
        timestamp = _time(head["time"], zone)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    event = query_event(line[head.end():], timestamp=timestamp, original=line)
    if event is None:
        category = head["category"] or "default"
        raise ParseError(f"BIND {category} message that is not a query log line", source=source)
    return "bind.log", event


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    if message.appname != "named":
        return False
    parsed = query_event(message.message, timestamp=event["@timestamp"], original=event["event"]["original"])
    if parsed is None:
        return False  # named's other messages: a Linux syslog event
    host = {**parsed.pop("host", {}), **event.get("host", {})}
    event.update(parsed)  # keeps the syslog fields (log.syslog, host, process, message)
    if host:
        event["host"] = host
    return True


def looks_like(line: str) -> bool:
    head = _FILE_HEAD.match(line)
    return head is not None and "query: " in line and "client " in line


FORMATS = (
    SourceFormat(
        name="bind", title="BIND 9 query log (queries category; file channel or named over syslog)",
        logsource=dns.LOGSOURCE,
        sample="22-Nov-2026 10:00:00.123 queries: info: client @0x7f3a1c0b2d40 10.10.1.25#53124 (www.example.com): "
               "query: www.example.com IN A +E(0)K (10.10.0.53)",
        parse=parse_line, looks_like=looks_like, syslog=syslog_hook, aliases=("named",)),
)
