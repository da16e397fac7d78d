"""What the DNS server logs (BIND, dnsmasq, Windows DNS Server) share: the event they become.

Every DNS server record becomes an ECS event with ``dns.type`` (``query`` or ``answer``),
``dns.question.name`` / ``.type`` / ``.class``, ``dns.answers`` and ``dns.resolved_ip`` for
answers, ``source.*`` (the asking client) and ``destination.*`` (the server or the forwarder),
and the Sigma logsource ``{category: dns}``, whose field names (``query``, ``answer``,
``record_type``, ``src_ip``) ``config/sigma/ecs.yml`` maps onto these.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from ingest.schema import Event

LOGSOURCE = {"category": "dns"}


@lru_cache(maxsize=8192)  # logs repeat their addresses; ipaddress costs more than the rest of a line
def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def endpoint(address: str, port: str | int | None = None) -> dict[str, Any]:
    """``source`` / ``destination`` fields: ``ip`` when the text is an address, else ``address``."""
    fields: dict[str, Any] = {"ip": address} if is_ip(address) else {"address": address}
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit() and len(port) <= 5):
        fields["port"] = int(port)
    return fields


def dns_event(*, timestamp: str, module: str, original: str, kind: str, name: str | None,
              qtype: str | None = None, qclass: str | None = None) -> Event:
    """The common part of a DNS server record; the caller adds addresses, answers and flags."""
    dns: dict[str, Any] = {"type": kind}
    question: dict[str, Any] = {}
    if name is not None:
        question["name"] = name.rstrip(".") or "."  # the root stays "."; "example.com." is example.com
    if qtype:
        question["type"] = qtype
    if qclass:
        question["class"] = qclass
    if question:
        dns["question"] = question
    return {
        "@timestamp": timestamp,
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "module": module,
                  "dataset": f"{module}.log", "original": original},
        "network": {"protocol": "dns"},
        "dns": dns,
        "socflow": {"logsource": dict(LOGSOURCE)},
    }


def add_answer(event: Event, data: str, rtype: str | None = None) -> None:
    """Record one answer; an address answer also goes to ``dns.resolved_ip``."""
    dns = event["dns"]
    answer: dict[str, Any] = {"data": data}
    name = dns.get("question", {}).get("name")
    if name:
        answer["name"] = name
    if rtype:
        answer["type"] = rtype
    dns.setdefault("answers", []).append(answer)
    if is_ip(data):
        dns.setdefault("resolved_ip", []).append(data)
