"""pfSense and OPNsense packet filter logs: the ``filterlog`` program's CSV records over syslog.

``Dec  7 09:22:10 pfs-cp002 filterlog[4721]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,4521,0,DF,6,tcp,60,
203.0.113.45,10.40.0.5,51515,3389,0,S,1429461425,,64240,,mss;sackOK;TS;nop;wscale``

Columns per pfSense's "Filter Log Format" (OPNsense writes the same): rule number, sub rule,
anchor, tracker, interface, reason, action, direction, IP version; then for IPv4 TOS, ECN, TTL,
id, offset, flags, protocol id, protocol, length, source, destination; for IPv6 class, flow
label, hop limit, protocol, protocol id, length, source, destination; then for TCP and UDP the
source and destination ports and data length (TCP: flags, sequence, ack, window, urg, options).

ECS: ``source.*``, ``destination.*``, ``network.transport`` / ``iana_number`` / ``type`` /
``direction``, ``event.action`` (pass, block, reject), ``observer.ingress|egress.interface``,
``rule.id`` (the tracker, stable across rule edits) and ``rule.ruleset`` (the rule number).
Sigma logsource ``{product: pfsense, category: firewall}``.
"""

from __future__ import annotations

from ingest.errors import ParseError
from ingest.parsers import netcommon
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event


def looks_like(line: str) -> bool:
    return " filterlog[" in line[:120] or " filterlog: " in line[:120] or " filterlog - " in line[:120]


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    if message.appname != "filterlog":
        return False
    columns = message.message.strip().split(",")
    if len(columns) < 9:
        raise ParseError(f"filterlog record with {len(columns)} columns, fewer than the 9 of its head")
    rule, _sub, _anchor, tracker, interface, reason, action, direction, version = columns[:9]
    meta = event["event"]
    meta.update({"kind": "event", "module": "pfsense", "dataset": "pfsense.filterlog", "category": ["network"]})
    event["socflow"] = {"logsource": {"product": "pfsense", "category": "firewall"}}
    verdict, outcome = netcommon.verdict(action)
    meta["action"] = action
    meta["type"] = ["connection", verdict] if verdict else ["connection"]
    if outcome:
        meta["outcome"] = outcome
    if reason and reason != "match":
        meta["reason"] = reason
    network: dict[str, str] = {"direction": {"in": "inbound", "out": "outbound"}.get(direction, direction)}
    if version == "4" and len(columns) >= 20:
        protocol_id, protocol, source, destination, rest = columns[15], columns[16], columns[18], columns[19], 20
        network["type"] = "ipv4"
    elif version == "6" and len(columns) >= 17:
        protocol, protocol_id, source, destination, rest = columns[12], columns[13], columns[15], columns[16], 17
        network["type"] = "ipv6"
    else:
        raise ParseError(f"filterlog IP version {version[:8]!r} with {len(columns)} columns")
    network.update(netcommon.transport(protocol_id))
    if protocol:
        network["transport"] = protocol.lower()
    ports = (columns[rest], columns[rest + 1]) if protocol.lower() in ("tcp", "udp") and len(columns) > rest + 1 \
        else (None, None)
    event["source"] = netcommon.endpoint(source, ports[0])
    event["destination"] = netcommon.endpoint(destination, ports[1])
    event["network"] = network
    side = "ingress" if direction == "in" else "egress"
    event["observer"] = {**netcommon.observer("pfSense/OPNsense", "filterlog"),
                         side: {"interface": {"name": interface}}}
    if message.hostname:
        event["observer"]["hostname"] = message.hostname
    event["rule"] = {"id": tracker, "ruleset": rule} if tracker else {"ruleset": rule}
    return True


parse_line = netcommon.line_parser(syslog_hook, "filterlog")


FORMATS = (SourceFormat(
    name="filterlog",
    title="pfSense / OPNsense filterlog (CSV over syslog)",
    logsource={"product": "pfsense", "category": "firewall"},
    sample="<134>Dec  7 09:22:10 pfs-cp002 filterlog[4721]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,4521,0,"
           "DF,6,tcp,60,203.0.113.45,10.40.0.5,51515,3389,0,S,1429461425,,64240,,mss;sackOK;TS;nop;wscale",
    parse=parse_line, looks_like=looks_like, syslog=syslog_hook, aliases=("pfsense", "opnsense")),)
