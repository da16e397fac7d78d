"""What the network sources share: ECS endpoints and protocols, and reading syslog-borne lines.

Firewalls, proxies and appliances (FortiGate, Cisco ASA, pfSense filterlog, iptables, CEF,
LEEF) send their records as syslog payloads. :func:`syslog_borne_line` reads such a record
from a file line with or without the syslog header a relay wrote in front of it, so the same
format hook serves the syslog collectors and ``socflow collect files --format NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import syslog
from ingest.schema import Event, format_timestamp

# IANA protocol numbers -> ECS network.transport names (lower case, as ECS wants them).
PROTOCOLS = {"1": "icmp", "2": "igmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "51": "ah",
             "58": "ipv6-icmp", "89": "ospf", "103": "pim", "112": "vrrp", "132": "sctp"}
PROTOCOL_NUMBERS = {name: number for number, name in PROTOCOLS.items()} | {"icmp6": "58", "icmpv6": "58"}

# Vendor action words, lower-cased -> ECS event.type (allowed / denied) of a firewall record.
_DENIED = frozenset({"deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "reset",
                     "blocked-by-policy", "server-rst", "client-rst"})
_ALLOWED = frozenset({"accept", "accepted", "allow", "allowed", "permit", "permitted", "pass", "passed",
                      "close", "timeout", "start", "built", "teardown", "forward", "est-allowed"})
_SYSLOG_HEAD = re.compile(r"^(?:<\d{1,3}>|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


def port(text: str | None) -> int | None:
    """A port number, or None for ``-``, empty or nonsense."""
    if text and text.isdigit() and len(text) <= 5:
        value = int(text)
        return value if value <= 65535 else None
    return None


def number(text: str | None) -> int | None:
    if text and text.isdigit() and len(text) <= 19:
        return int(text)
    return None


def endpoint(ip: str | None, port_text: str | None = None, **extra: Any) -> dict[str, Any]:
    """An ECS ``source`` / ``destination`` object; empty values left out."""
    found: dict[str, Any] = {}
    if ip and ip != "-":
        found["ip" if _looks_like_ip(ip) else "address"] = ip
    if port_text:
        value = port(port_text)
        if value is not None:
            found["port"] = value
    for key, item in extra.items():
        if item is not None and item not in ("", "-"):
            found[key] = item
    return found


def _looks_like_ip(text: str) -> bool:
    return (text.count(".") == 3 and text.replace(".", "").isdigit()) or (":" in text and all(
        c in "0123456789abcdefABCDEF:." for c in text))


def transport(protocol: str | None) -> dict[str, str]:
    """``network.transport`` and ``network.iana_number`` from a protocol number or name."""
    if not protocol:
        return {}
    lowered = protocol.lower()
    if lowered.isdigit():
        name = PROTOCOLS.get(lowered)
        return {"iana_number": lowered, **({"transport": name} if name else {})}
    iana = PROTOCOL_NUMBERS.get(lowered)
    return {"transport": lowered, **({"iana_number": iana} if iana else {})}


def verdict(action: str | None) -> tuple[str | None, str | None]:
    """``(event.type entry, event.outcome)`` of a firewall action word: denied/failure, allowed/success."""
    lowered = (action or "").lower()
    if lowered in _DENIED:
        return "denied", "failure"
    if lowered in _ALLOWED:
        return "allowed", "success"
    return None, None


def observer(vendor: str, product: str, kind: str = "firewall", **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"vendor": vendor, "product": product, "type": kind}
    for key, value in extra.items():
        if value is not None and value not in ("", "-"):
            found[key] = value
    return found


def looks_like_syslog(line: str) -> bool:
    return bool(_SYSLOG_HEAD.match(line))


SyslogHook = Callable[[Event, syslog.SyslogMessage], bool]


def syslog_borne_line(line: str, hook: SyslogHook, *, name: str, source: str, hint: str = "",
                      received: datetime | None = None) -> tuple[str, Event]:
    """A file line holding a syslog-borne record, with or without a syslog header in front.

    A syslog line that is not of this format is read as the syslog collector reads it (every
    catalogued format, then the Linux programs): files relayed by rsyslog mix devices, and
    sniffing saw only the first line. A bare line that ``hook`` does not recognise is a
    ParseError.
    """
    from ingest.parsers import linux  # linux consults the catalogue, which imports this module

    received = received or datetime.now(UTC)
    try:
        if looks_like_syslog(line):
            message = syslog.parse_file_line(line, received=received)
            event = syslog.to_event(message, line)
            if not hook(event, message):
                linux.enrich_program(event, message, auth_log=hint.rsplit("/", 1)[-1].startswith(("auth", "secure")))
        else:  # the bare payload, as some appliances write their own files
            message = syslog.SyslogMessage(timestamp=format_timestamp(received), message=line)
            event = syslog.to_event(message, line)
            if not hook(event, message):
                raise ParseError(f"not a {name} record", source=source)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    return str(event["event"]["dataset"]), event


def looks_like_text(line: str) -> bool:
    """Not a JSON line (whose message may quote a firewall record: the JSON parser reads those)."""
    return not line.startswith(("{", "["))


def line_parser(hook: SyslogHook, name: str) -> Callable[..., tuple[str, Event]]:
    """The catalogue's file-line parser of a syslog-borne format, from its syslog hook."""

    def parse_line(line: str, *, source: str, hint: str = "", received: datetime | None = None) -> tuple[str, Event]:
        return syslog_borne_line(line, hook, name=name, source=source, hint=hint, received=received)

    parse_line.__doc__ = f"A file line of {name} records, with or without a syslog header."
    return parse_line
