"""iptables / nftables packet logs: the kernel's ``LOG`` target lines, behind their log prefix.

``Dec  7 09:23:44 gw-cp003 kernel: [1234567.890123] [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:5e:6c:00:...
SRC=203.0.113.45 DST=10.50.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=4321 DF PROTO=TCP SPT=51515 DPT=445
WINDOW=64240 RES=0x00 SYN URGP=0``

The prefix (``--log-prefix`` / nftables ``log prefix``) is the administrator's own text; it
becomes ``rule.name``, and its verdict word (DROP, REJECT, BLOCK, DENY / ACCEPT, ALLOW) becomes
``event.action`` and ``event.type`` denied / allowed (a prefix without one: ``log``). ``IN=``
and ``OUT=`` name the interfaces (both set: a forwarded packet). ECS ``source.*``,
``destination.*``, ``network.transport``, ``observer.ingress|egress.interface.name``; the TCP
flags are kept in ``netfilter.flags``. Sigma logsource ``{product: linux, service: netfilter,
category: firewall}``.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.parsers import netcommon
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event

_UPTIME = re.compile(r"^\[\s*\d+\.\d+\]\s*")
_PAIR = re.compile(r"(?<![A-Z])([A-Z]+)=(\S*)")
_VERDICTS = (("DROP", "drop"), ("REJECT", "reject"), ("BLOCK", "block"), ("DENY", "deny"), ("ACCEPT", "accept"),
             ("ALLOW", "allow"), ("PASS", "pass"))
_FLAGS = frozenset({"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN", "DF", "MF", "CE"})


def looks_like(line: str) -> bool:
    return (" SRC=" in line and " DST=" in line and "IN=" in line and " PROTO=" in line
            and netcommon.looks_like_text(line))


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    text = message.message
    if message.appname not in ("kernel", None) or "IN=" not in text or " SRC=" not in text:
        return False
    text = _UPTIME.sub("", text)
    start = text.find("IN=")
    prefix = text[:start].strip()
    pairs = dict(_PAIR.findall(text, start))
    flags = [token for token in text[start:].split() if token in _FLAGS]
    action = next((word for key, word in _VERDICTS if key in prefix.upper()), "log")
    verdict, outcome = netcommon.verdict(action)
    meta = event["event"]
    meta.update({"kind": "event", "module": "netfilter", "dataset": "netfilter.log", "category": ["network"],
                 "action": action, "type": ["connection", verdict] if verdict else ["connection"]})
    if outcome:
        meta["outcome"] = outcome
    event["socflow"] = {"logsource": {"product": "linux", "service": "netfilter", "category": "firewall"}}
    event["source"] = netcommon.endpoint(pairs.get("SRC"), pairs.get("SPT"))
    event["destination"] = netcommon.endpoint(pairs.get("DST"), pairs.get("DPT"))
    network: dict[str, Any] = netcommon.transport(pairs.get("PROTO"))
    if pairs.get("SRC") and ":" in pairs["SRC"]:
        network["type"] = "ipv6"
    elif pairs.get("SRC"):
        network["type"] = "ipv4"
    inbound, outbound = pairs.get("IN", ""), pairs.get("OUT", "")
    if inbound and not outbound:
        network["direction"] = "ingress"
    elif outbound and not inbound:
        network["direction"] = "egress"
    event["network"] = network
    observer: dict[str, Any] = netcommon.observer("Linux", "netfilter", hostname=message.hostname)
    if inbound:
        observer["ingress"] = {"interface": {"name": inbound}}
    if outbound:
        observer["egress"] = {"interface": {"name": outbound}}
    event["observer"] = observer
    if prefix:
        event["rule"] = {"name": prefix}
    netfilter: dict[str, Any] = {key.lower(): value for key, value in pairs.items()
                                 if key in ("MAC", "LEN", "TTL", "ID", "TYPE", "CODE", "MARK", "PHYSIN", "PHYSOUT")}
    if flags:
        netfilter["flags"] = flags
    event["netfilter"] = netfilter
    event["message"] = text
    return True


parse_line = netcommon.line_parser(syslog_hook, "netfilter (iptables/nftables)")


FORMATS = (SourceFormat(
    name="netfilter",
    title="iptables / nftables kernel packet log lines (LOG target, with prefix)",
    logsource={"product": "linux", "service": "netfilter", "category": "firewall"},
    sample="<4>Dec  7 09:23:44 gw-cp003 kernel: [1234567.890123] [UFW BLOCK] IN=eth0 OUT= "
           "MAC=00:16:3e:5e:6c:00:00:16:3e:11:22:33:08:00 SRC=203.0.113.45 DST=10.50.0.5 LEN=60 TOS=0x00 "
           "PREC=0x00 TTL=52 ID=4321 DF PROTO=TCP SPT=51515 DPT=445 WINDOW=64240 RES=0x00 SYN URGP=0",
    parse=parse_line, looks_like=looks_like, syslog=syslog_hook, aliases=("iptables", "nftables")),)
