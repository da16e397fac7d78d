"""Exchange Server message tracking logs (``MSGTRK*.LOG``: CSV with a ``#Fields:`` header).

Each file starts with ``#Software``, ``#Version``, ``#Log-type``, ``#Date`` and ``#Fields:``
lines; records are comma-separated, a value with commas or quotes in double quotes::

    #Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,
        event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,...
    2026-11-22T03:10:00.123Z,,,,EX01,,,MAILBOXRULE,RECEIVE,41234,<a1b2c3@EX01...>,9f0e...,lan.pham.backup@example.net,
        ...,Fw: Budget 2027,lan.pham@hoagiang.gov.vn,...

(each one line, wrapped here; :data:`DEFAULT_FIELDS` lists the 30 fields)

The header lines are skipped (counted); the ``#Fields:`` line of a file is remembered for its
next lines (by path), and a file read from the middle, after a restart, uses the field order
Exchange 2013-2019 write. Every value is kept under ``exchange.message_tracking`` by its log
name (the rules' field names: ``event-id``, ``source``, ``recipient-address``...); ECS:
``email.from.address``, ``email.to.address`` (``;``-separated recipients), ``email.subject``,
``email.message_id``, ``email.local_id`` (internal-message-id), ``email.direction``,
``host.name`` the Exchange server that logged it (the server of a receive, the client of an SMTP
send), ``source`` / ``destination`` the two ends, ``event.action`` the event id.
Sigma logsource ``{product: exchange, service: message-tracking}``.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from ingest.errors import ParseError, SkippedLineError
from ingest.normalize import coerce_timestamp
from ingest.parsers import mail
from ingest.parsers.catalogue import SourceFormat
from ingest.schema import Event

LOGSOURCE = {"product": "exchange", "service": "message-tracking"}
DEFAULT_FIELDS = (
    "date-time", "client-ip", "client-hostname", "server-ip", "server-hostname", "source-context", "connector-id",
    "source", "event-id", "internal-message-id", "message-id", "network-message-id", "recipient-address",
    "recipient-status", "total-bytes", "recipient-count", "related-recipient-address", "reference",
    "message-subject", "sender-address", "return-path", "message-info", "directionality", "tenant-id",
    "original-client-ip", "original-server-ip", "custom-data", "transport-traffic-type", "log-id", "schema-version")
_DIRECTIONS = {"Incoming": "inbound", "Originating": "outbound", "Outgoing": "outbound"}
_FIELDS_BY_FILE: dict[str, tuple[str, ...]] = {}


def _header(line: str, hint: str, source: str) -> None:
    if line.startswith("#Fields:"):
        names = tuple(name.strip() for name in line[len("#Fields:"):].split(","))
        if "date-time" not in names:
            raise ParseError("#Fields: header without date-time", source=source)
        if len(_FIELDS_BY_FILE) > 1024:
            _FIELDS_BY_FILE.clear()
        _FIELDS_BY_FILE[hint] = names
    raise SkippedLineError("message tracking log header", source=source)


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    if line.startswith("#"):
        _header(line, hint, source)
    names = _FIELDS_BY_FILE.get(hint, DEFAULT_FIELDS)
    try:
        values = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration) as error:
        raise ParseError(f"not a CSV record: {error}", source=source) from error
    if len(values) != len(names):
        raise ParseError(f"{len(values)} values for {len(names)} fields", source=source)
    record = {name: value for name, value in zip(names, values, strict=True) if value}
    try:
        timestamp = coerce_timestamp(record.get("date-time", ""))
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    event: Event = {
        "@timestamp": timestamp,
        "event": {"kind": "event", "category": ["email"], "module": "exchange",
                  "dataset": "exchange.message_tracking", "original": line},
        "exchange": {"message_tracking": record},
        "socflow": {"logsource": dict(LOGSOURCE)},
    }
    if record.get("event-id"):
        event["event"]["action"] = record["event-id"].lower()
    email: dict[str, Any] = {}
    if sender := mail.address(record.get("sender-address")):
        email["from"] = {"address": [sender]}
    recipients = [address for part in record.get("recipient-address", "").split(";")
                  if (address := mail.address(part))]
    if recipients:
        email["to"] = {"address": recipients}
    for name, key in (("message-subject", "subject"), ("message-id", "message_id"),
                      ("internal-message-id", "local_id")):
        if record.get(name):
            email[key] = record[name]
    if record.get("directionality") in _DIRECTIONS:
        email["direction"] = _DIRECTIONS[record["directionality"]]
    event["email"] = email
    _hosts(event, record)
    return "exchange.message_tracking", event


def _hosts(event: Event, record: dict[str, str]) -> None:
    """The logging Exchange server is the "server" of what it receives and the "client" of what it sends on."""
    sending = record.get("event-id") == "SEND" and record.get("source") == "SMTP"
    local, remote = ("client", "server") if sending else ("server", "client")
    if record.get(f"{local}-hostname"):
        event["host"] = {"name": record[f"{local}-hostname"]}
    if record.get(f"{remote}-ip"):
        side = event["destination" if sending else "source"] = mail.endpoint(record[f"{remote}-ip"])
        if record.get(f"{remote}-hostname"):
            side["domain"] = record[f"{remote}-hostname"]
    if record.get(f"{local}-ip"):
        event["source" if sending else "destination"] = mail.endpoint(record[f"{local}-ip"])


_RECORD = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z,")


def looks_like(line: str) -> bool:
    """A header of a message tracking log, or a record of one (a file read from the middle)."""
    if line.startswith(("#Software: Microsoft Exchange", "#Log-type: Message Tracking")):
        return True
    if line.startswith("#Fields: date-time,"):
        return "event-id" in line
    return _RECORD.match(line) is not None and line.count(",") >= len(DEFAULT_FIELDS) - 1


FORMATS = (
    SourceFormat(
        name="exchange", title="Exchange Server message tracking log (MSGTRK*.LOG, CSV with #Fields:)",
        logsource=LOGSOURCE,
        sample="2026-11-22T03:10:00.123Z,,,,EX01,,,MAILBOXRULE,RECEIVE,41234,"
               "<a1b2c3@EX01.hoagiang.gov.vn>,9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b,lan.pham.backup@example.net,,"
               "48213,1,,,Fw: Budget 2027,lan.pham@hoagiang.gov.vn,lan.pham@hoagiang.gov.vn,,Originating,,,,,Email,"
               "08DD1A2B3C4D5E6F,15.02.1544.004",
        parse=parse_line, looks_like=looks_like, aliases=("msgtrk", "exchange-msgtrk")),
)
