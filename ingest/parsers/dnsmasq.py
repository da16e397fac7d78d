"""dnsmasq query logs (``log-queries``), over syslog or in its ``log-facility`` file.

With ``log-queries`` dnsmasq logs, as ``dnsmasq[PID]:``::

    query[A] www.example.com from 10.10.1.25
    forwarded www.example.com to 10.10.0.53
    reply www.example.com is 93.184.216.34
    cached www.example.com is <CNAME>
    /etc/hosts portal.hoagiang.gov.vn is 10.10.0.80
    config blocked.example is NXDOMAIN

With ``log-queries=extra`` each line starts with a serial number and the client's
``address/port``. Lines of other kinds (start-up, DHCP) are left to the Linux syslog path.
Event: ``dns.*`` (:mod:`ingest.parsers.dns`), ``source.ip`` the client of a query (or of the
``extra`` prefix), ``destination.ip`` the upstream server of ``forwarded``, ``event.action``
``dns_query`` / ``dns_forward`` / ``dns_answer``, and ``dnsmasq.answer_source`` (reply,
cached, config or the hosts file answering).
"""

from __future__ import annotations

import re

from ingest.parsers import dns, linux
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event

_EXTRA = re.compile(r"(?P<serial>\d+) (?P<ip>[0-9a-fA-F.:]+)/(?P<port>\d+) ")
_QUERY = re.compile(r"query\[(?P<type>[^\]]+)\] (?P<name>\S+) from (?P<ip>\S+)$")
_FORWARDED = re.compile(r"forwarded (?P<name>\S+) to (?P<ip>\S+)$")
_ANSWER = re.compile(r"(?P<origin>reply|cached|cached-stale|config|validation|/\S+) (?P<name>\S+) is (?P<data>.+)$")
_NEGATIVE = {"NXDOMAIN", "NODATA", "NODATA-IPv4", "NODATA-IPv6", "SERVFAIL", "REFUSED"}


def message_event(text: str, *, timestamp: str, original: str) -> Event | None:
    """The event of a dnsmasq query-log message; None for dnsmasq's other messages."""
    extra = _EXTRA.match(text)
    body = text[extra.end():] if extra else text
    query = _QUERY.match(body)
    if query:
        event = dns.dns_event(timestamp=timestamp, module="dnsmasq", original=original, kind="query",
                              name=query["name"], qtype=query["type"])
        event["event"]["action"] = "dns_query"
        event["source"] = dns.endpoint(query["ip"])
    elif forwarded := _FORWARDED.match(body):
        event = dns.dns_event(timestamp=timestamp, module="dnsmasq", original=original, kind="query",
                              name=forwarded["name"])
        event["event"]["action"] = "dns_forward"
        event["destination"] = dns.endpoint(forwarded["ip"])
    elif answer := _ANSWER.match(body):
        event = dns.dns_event(timestamp=timestamp, module="dnsmasq", original=original, kind="answer",
                              name=answer["name"])
        event["event"]["action"] = "dns_answer"
        data = answer["data"].strip()
        if data in _NEGATIVE:
            event["dns"]["response_code"] = "NOERROR" if data.startswith("NODATA") else data
        else:
            event["dns"]["response_code"] = "NOERROR"
            bracketed = data.startswith("<") and data.endswith(">")  # <CNAME>: a record of that type
            dns.add_answer(event, data, rtype=data[1:-1] if bracketed else None)
        event["dnsmasq"] = {"answer_source": answer["origin"]}
    else:
        return None
    if extra:
        event.setdefault("source", dns.endpoint(extra["ip"], extra["port"]))
        event["dns"]["id"] = extra["serial"]
    return event


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    if message.appname != "dnsmasq":
        return False
    parsed = message_event(message.message, timestamp=event["@timestamp"], original=event["event"]["original"])
    if parsed is None:
        return False
    event.update(parsed)  # keeps the syslog fields (log.syslog, host, process, message)
    return True


FORMATS = (
    SourceFormat(
        name="dnsmasq", title="dnsmasq query log (log-queries; syslog or log-facility file)",
        logsource=dns.LOGSOURCE,
        sample="Nov 22 10:00:00 ag-001-gw dnsmasq[1234]: query[A] www.example.com from 10.10.1.25",
        parse=linux.parse_syslog_file_line, syslog=syslog_hook),
)
