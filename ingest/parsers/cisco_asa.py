"""Cisco ASA (and FTD in ASA mode) syslog messages: ``%ASA-<severity>-<message id>: <text>``.

``<166>Dec 07 2026 09:21:03 asa-cp001 : %ASA-4-106023: Deny tcp src outside:203.0.113.45/51515 dst
inside:10.30.0.10/22 by access-group "outside_access_in" [0x0, 0x0]``

The message ids read into ECS (per Cisco's "ASA Series Syslog Messages"): 106023 and 106100 (an
ACL denied or permitted a packet), 302013/302015 (a TCP/UDP connection built, with its
direction: for an ``outbound`` one the initiator is the second, inside endpoint),
302014/302016 (torn down, with duration, bytes and reason), 113004/113005 (AAA
authentication accepted/rejected), 605004/605005 (administrator login denied/permitted),
111008/111010 (a user ran a configuration command). Others keep the id, severity and text.

The ASA's own time stamp (``logging timestamp``: ``Dec 07 2026 09:21:03``) and device id may
sit between the syslog header and the message; both are read. Sigma logsource: connection
and ACL messages ``{product: cisco, service: asa, category: firewall}``; command messages
``{product: cisco, service: aaa}`` (SigmaHQ's Cisco AAA rules search their command text);
the rest ``{product: cisco, service: asa}``.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import netcommon
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SEVERITIES, SyslogMessage
from ingest.schema import Event, format_timestamp

_HEAD = re.compile(r"%(ASA|FTD)-(\d)-(\d{6}):? ?")
_ASA_TIME = re.compile(r"^(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d{4}) (\d\d:\d\d:\d\d)) ?(?:(\S+) )?:? ?$")
_END = r"(?:/(?P<{0}_port>\d+))?"
_ENDPOINT = r"(?P<{0}_if>[^\s:]+):(?P<{0}_ip>[0-9A-Fa-f.:]+)" + _END
_BUILT = re.compile(
    r"^Built (?P<direction>inbound|outbound) (?P<proto>TCP|UDP|ICMP|SCTP) connection (?P<id>\d+) for "
    + _ENDPOINT.format("a") + r" \([^)]*\)(?: ?\([^)]*\))? to " + _ENDPOINT.format("b"))
_TEARDOWN = re.compile(
    r"^Teardown (?P<proto>TCP|UDP|ICMP|SCTP) connection (?P<id>\d+) for " + _ENDPOINT.format("a") + " to "
    + _ENDPOINT.format("b") + r" duration (?P<duration>\d+:\d\d:\d\d) bytes (?P<bytes>\d+)(?: (?P<reason>.*?))?"
    r"(?: \((?P<user>[^)]*)\))?$")
_DENY = re.compile(
    r"^Deny (?P<proto>\S+) src " + _ENDPOINT.format("a") + " dst " + _ENDPOINT.format("b")
    + r"(?: \(type \d+, code \d+\))? by access-group \"(?P<acl>[^\"]*)\"")
_ACL = re.compile(
    r"^access-list (?P<acl>\S+) (?P<action>permitted|denied|est-allowed) (?P<proto>\S+) "
    r"(?P<a_if>[^/\s]+)/(?P<a_ip>[^(\s]+)\((?P<a_port>\d+)\)(?:\([^)]*\))? -> "
    r"(?P<b_if>[^/\s]+)/(?P<b_ip>[^(\s]+)\((?P<b_port>\d+)\)")
_AAA = re.compile(r"^AAA user authentication (?P<result>Successful|Rejected) :(?: reason = (?P<reason>[^:]*) :)?"
                  r" server = +(?P<server>\S+) : user = (?P<user>.*?)(?: : user IP = (?P<ip>\S+))?$")
_LOGIN = re.compile(r"^Login (?P<result>permitted|denied) from (?P<a_ip>[^/\s]+)/(?P<a_port>\d+) to "
                    r"(?P<b_if>[^:\s]+):(?P<b_ip>[^/\s]+)/(?P<service>\S+) for user \"(?P<user>[^\"]*)\"")
_COMMAND = re.compile(r"^User '(?P<user>[^']*)' executed the '(?P<command>.*)' command\.?$")
_COMMAND_FROM = re.compile(r"^User '(?P<user>[^']*)', running '(?P<app>[^']*)' from IP (?P<ip>\S+), executed "
                           r"'(?P<command>.*)'$")
_MONTHS = {name: index for index, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_PREFIXES: dict[tuple[str, tzinfo], tuple[str | None, str | None]] = {}
FIREWALL_IDS = frozenset({"106001", "106006", "106007", "106014", "106015", "106023", "106100", "302013", "302014",
                          "302015", "302016", "302020", "302021", "710003"})


def looks_like(line: str) -> bool:
    return ("%ASA-" in line[:160] or "%FTD-" in line[:160]) and netcommon.looks_like_text(line)


def _endpoints(event: Event, match: re.Match[str], *, swap: bool = False) -> None:
    first, second = ("b", "a") if swap else ("a", "b")
    groups = match.groupdict()
    event["source"] = netcommon.endpoint(groups.get(f"{first}_ip"), groups.get(f"{first}_port"))
    event["destination"] = netcommon.endpoint(groups.get(f"{second}_ip"), groups.get(f"{second}_port"))
    observer = event["observer"]
    if groups.get(f"{first}_if"):
        observer["ingress"] = {"interface": {"name": groups[f"{first}_if"]}}
    if groups.get(f"{second}_if"):
        observer["egress"] = {"interface": {"name": groups[f"{second}_if"]}}


def _seconds(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _read(event: Event, code: str, text: str) -> None:  # noqa: PLR0912, PLR0915 - one branch per message id
    meta = event["event"]
    logsource: dict[str, str] = {"product": "cisco", "service": "asa"}
    if code in FIREWALL_IDS:
        logsource["category"] = "firewall"
        meta["category"] = ["network"]
    match: re.Match[str] | None
    if code in ("302013", "302015") and (match := _BUILT.match(text)):
        _endpoints(event, match, swap=match["direction"] == "outbound")
        event["network"] = {**netcommon.transport(match["proto"]), "direction": match["direction"]}
        meta.update({"action": "built", "type": ["connection", "start", "allowed"], "outcome": "success"})
        event["cisco"] = {"asa": {"connection_id": match["id"]}}
    elif code in ("302014", "302016") and (match := _TEARDOWN.match(text)):
        _endpoints(event, match)
        event["network"] = {**netcommon.transport(match["proto"]), "bytes": int(match["bytes"])}
        meta.update({"action": "teardown", "type": ["connection", "end"], "outcome": "success",
                     "duration": _seconds(match["duration"]) * 1_000_000_000})
        asa: dict[str, Any] = {"connection_id": match["id"]}
        if match["reason"]:
            asa["termination_reason"] = match["reason"]
        if match["user"]:
            event["user"] = {"name": match["user"]}
        event["cisco"] = {"asa": asa}
    elif code == "106023" and (match := _DENY.match(text)):
        _endpoints(event, match)
        event["network"] = netcommon.transport(match["proto"])
        meta.update({"action": "deny", "type": ["connection", "denied"], "outcome": "failure"})
        event["rule"] = {"name": match["acl"]}
    elif code == "106100" and (match := _ACL.match(text)):
        _endpoints(event, match)
        event["network"] = netcommon.transport(match["proto"])
        verdict, outcome = netcommon.verdict(match["action"])
        meta.update({"action": match["action"], "type": ["connection", verdict or "info"], "outcome": outcome})
        event["rule"] = {"name": match["acl"]}
    elif code in ("113004", "113005") and (match := _AAA.match(text)):
        success = match["result"] == "Successful"
        meta.update({"category": ["authentication"], "action": "aaa-authentication",
                     "outcome": "success" if success else "failure", "type": ["start" if success else "info"]})
        event["user"] = {"name": match["user"].strip()}
        event["server"] = {"address": match["server"]}
        if match["ip"]:
            event["source"] = netcommon.endpoint(match["ip"])
        if match["reason"]:
            meta["reason"] = match["reason"].strip()
    elif code in ("605004", "605005") and (match := _LOGIN.match(text)):
        success = match["result"] == "permitted"
        meta.update({"category": ["authentication"], "action": "admin-login",
                     "outcome": "success" if success else "failure"})
        event["source"] = netcommon.endpoint(match["a_ip"], match["a_port"])
        event["destination"] = netcommon.endpoint(match["b_ip"])
        event["network"] = {"protocol": match["service"].lower()}
        event["user"] = {"name": match["user"]}
    elif code in ("111008", "111010") and (match := _COMMAND.match(text) or _COMMAND_FROM.match(text)):
        logsource = {"product": "cisco", "service": "aaa"}
        meta.update({"category": ["configuration"], "type": ["change"], "action": "command-executed"})
        event["user"] = {"name": match["user"]}
        event["process"] = {"command_line": match["command"]}
        groups = match.groupdict()
        if groups.get("ip"):
            event["source"] = netcommon.endpoint(groups["ip"])
    event["socflow"] = {"logsource": logsource}


def _asa_time(prefix: str, zone: tzinfo) -> tuple[str | None, str | None]:
    """The ASA's own stamp (in the sender zone: it names none) and device id between the syslog
    header and ``%ASA-``; one second's lines share them."""
    key = (prefix, zone)
    found = _PREFIXES.get(key)
    if found is None:
        if len(_PREFIXES) > 4096:
            _PREFIXES.clear()
        found = _PREFIXES[key] = _asa_time_uncached(prefix, zone)
    return found


def _asa_time_uncached(prefix: str, zone: tzinfo) -> tuple[str | None, str | None]:
    match = _ASA_TIME.match(prefix)
    if not match:
        return None, (prefix.strip(" :") or None) if " " not in prefix.strip(" :") else None
    stamp = None
    if match[1] in _MONTHS:
        try:
            moment = datetime.strptime(f"{match[3]}-{_MONTHS[match[1]]}-{match[2]} {match[4]}",
                                       "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
            stamp = format_timestamp(moment)
        except ValueError:
            stamp = None
    return stamp, match[5]


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    appname = message.appname or ""
    if appname.startswith(("%ASA-", "%FTD-")):
        text = f"{appname}: {message.message}"  # "host %ASA-6-302013: ..." read the id as a program tag
        event.pop("process", None)
        event["log"]["syslog"].pop("appname", None)
    else:
        text = message.message
    position = text.find("%ASA-")
    if position < 0:
        position = text.find("%FTD-")
        if position < 0:
            return False
    head = _HEAD.match(text, position)
    if head is None:
        raise ParseError(f"bad Cisco message id {text[position: position + 20]!r}")
    stamp, device = _asa_time(text[:position], message.zone) if position else (None, None)
    severity, code, body = int(head[2]), head[3], text[head.end():]
    meta = event["event"]
    meta.update({"kind": "event", "module": "cisco", "dataset": "cisco.asa", "code": code,
                 "severity": severity})
    event["log"]["level"] = SEVERITIES[severity]
    event["message"] = body
    event["observer"] = netcommon.observer("Cisco", head[1])
    if stamp:
        event["@timestamp"] = stamp
    hostname = device or message.hostname
    if hostname:
        event["observer"]["hostname"] = hostname
        event["host"] = {**event.get("host", {}), "name": hostname}
    _read(event, code, body)
    return True


parse_line = netcommon.line_parser(syslog_hook, "Cisco ASA")


FORMATS = (SourceFormat(
    name="asa",
    title="Cisco ASA / FTD syslog messages (%ASA-sev-id)",
    logsource={"product": "cisco", "service": "asa", "category": "firewall"},
    produces=({"product": "cisco", "service": "asa"}, {"product": "cisco", "service": "aaa"}),
    sample='<164>Dec 07 2026 09:21:03 asa-cp001 : %ASA-4-106023: Deny tcp src outside:203.0.113.45/51515 dst '
           'inside:10.30.0.10/22 by access-group "outside_access_in" [0x0, 0x0]',
    parse=parse_line, looks_like=looks_like, syslog=syslog_hook, aliases=("cisco-asa",)),)
