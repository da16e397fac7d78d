"""Windows DNS Server debug log (``dns.log``, "Log packets for debugging"), the PACKET lines.

::

    11/22/2026 10:00:05 AM 0A8C PACKET  000001D8F1A4C2B0 UDP Rcv 10.10.1.25      a1b2   Q [0001   D   NOERROR] A
        (7)example(3)com(0)
    11/22/2026 10:00:05 AM 0A8C PACKET  000001D8F1A4C2B0 UDP Snd 10.10.1.25      a1b2 R Q [8081   DR  NOERROR] A
        (7)example(3)com(0)

(each record is one line, wrapped here)

Fields: date and time (the server's locale and zone; the default US form ``M/D/YYYY h:mm:ss
AM`` and the 24-hour form are read, in the file source's ``timezone``, UTC by default), thread,
context, protocol, direction (``Rcv`` / ``Snd``), remote address, transaction id, ``R`` for a
response, opcode, ``[flags-hex flag-letters RCODE]``, question type and name in wire notation (``(7)example(3)com(0)``).
``Rcv`` puts the remote address in ``source``, ``Snd`` in ``destination``. The file's preamble
("DNS Server log file creation at ...", the field key) is a header: counted, not an event.
The analytic log (``Microsoft-Windows-DNSServer/Analytical``) is an event log channel: it
arrives as EVTX or a Windows JSON shape, not here.
"""

from __future__ import annotations

import re
from datetime import UTC, tzinfo

from ingest.errors import ParseError, SkippedLineError
from ingest.parsers import dns
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.stamps import local_stamp
from ingest.schema import Event

_PACKET = re.compile(
    r"^(?P<date>\d{1,2}/\d{1,2}/\d{4}) (?P<time>\d{1,2}:\d{2}:\d{2})(?: (?P<ampm>[AP]M))? +(?P<thread>[0-9A-Fa-f]+) "
    r"PACKET +(?P<context>[0-9A-Fa-f]+) (?P<proto>UDP|TCP) (?P<dir>Rcv|Snd) (?P<ip>[0-9A-Fa-f.:]+) +"
    r"(?P<xid>[0-9A-Fa-f]+) (?P<response>[ R]) (?P<opcode>[A-Z?]) \[(?P<hexflags>[0-9A-Fa-f]{4}) +"
    r"(?P<letters>[A-Z ]*?) *(?P<rcode>[A-Z]+)\] +(?P<qtype>\S+) +(?P<qname>\S+)\s*$")
_LABEL = re.compile(r"\((\d{1,3})\)")
_HEADER = ("DNS Server log", "Log file wrap", "Message logging key", "Field #", "-------", "Note:")
_OPCODES = {"Q": "QUERY", "N": "NOTIFY", "U": "UPDATE", "?": "UNKNOWN"}
_FLAGS = (("A", "AA"), ("T", "TC"), ("D", "RD"), ("R", "RA"))


def wire_name(text: str) -> str:
    """``(7)example(3)com(0)`` -> ``example.com``; the root ``(0)`` -> ``.``."""
    labels = [label for label in _LABEL.split(text)[2::2] if label]
    return ".".join(labels) or "."


def _time(date: str, time: str, ampm: str | None, zone: tzinfo) -> str:
    if ampm:
        return local_stamp(f"{date} {time} {ampm}", "", "%m/%d/%Y %I:%M:%S %p", zone, what="Windows DNS log")
    return local_stamp(f"{date} {time}", "", "%m/%d/%Y %H:%M:%S", zone, what="Windows DNS log")


def parse_line(line: str, *, source: str, hint: str = "", zone: tzinfo = UTC) -> tuple[str, Event]:
    match = _PACKET.match(line)
    if match is None:
        stripped = line.strip()
        if not stripped or line[:1] in " \t" or stripped.startswith(_HEADER):
            raise SkippedLineError("Windows DNS debug log preamble", source=source)
        raise ParseError("not a Windows DNS debug log PACKET line", source=source)
    try:
        timestamp = _time(match["date"], match["time"], match["ampm"], zone)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    response = match["response"] == "R"
    event = dns.dns_event(timestamp=timestamp, module="windows_dns", original=line,
                          kind="answer" if response else "query", name=wire_name(match["qname"]),
                          qtype=match["qtype"])
    verb = "received" if match["dir"] == "Rcv" else "sent"  # Snd Q: a query to a forwarder; Rcv R: its answer
    event["event"]["action"] = f"dns_{'response' if response else 'query'}_{verb}"
    side = "source" if match["dir"] == "Rcv" else "destination"
    event[side] = dns.endpoint(match["ip"])
    event["network"]["transport"] = match["proto"].lower()
    event["dns"]["id"] = match["xid"]
    event["dns"]["op_code"] = _OPCODES.get(match["opcode"], match["opcode"])
    flags = [name for letter, name in _FLAGS if letter in match["letters"]]
    if flags:
        event["dns"]["header_flags"] = flags
    if response:
        event["dns"]["response_code"] = match["rcode"]
    event["windows_dns"] = {"thread": match["thread"], "context": match["context"], "flags": match["hexflags"]}
    return "windows_dns.log", event


def looks_like(line: str) -> bool:
    return line.startswith("DNS Server log file creation at") or _PACKET.match(line) is not None


FORMATS = (
    SourceFormat(
        name="windns", title="Windows DNS Server debug log (dns.log PACKET lines)", logsource=dns.LOGSOURCE,
        sample="11/22/2026 10:00:05 AM 0A8C PACKET  000001D8F1A4C2B0 UDP Rcv 10.10.1.25      a1b2   Q "
               "[0001   D   NOERROR] A      (7)example(3)com(0)",
        parse=parse_line, looks_like=looks_like, aliases=("windows-dns",)),
)
