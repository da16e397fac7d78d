"""Zimbra Collaboration audit log (``/opt/zimbra/log/audit.log``, the mailbox server's ``security`` category).

::

    2026-11-22 10:00:03,123 WARN  [qtp1234567-89:https://mail.hoagiang.gov.vn/service/soap/AuthRequest]
        [name=an.nguyen@hoagiang.gov.vn;oip=198.51.100.23;ua=zclient/8.8.15_GA_4177;soapId=1a2b3c;] security -
        cmd=Auth; account=an.nguyen@hoagiang.gov.vn; protocol=soap; error=authentication failed for [...], ...;
    2026-11-22 10:05:00,456 INFO  [qtp1234567-90:https://mail.hoagiang.gov.vn:7071/service/admin/soap/ModifyAccountRequest]
        [name=admin@hoagiang.gov.vn;oip=203.0.113.66;ua=zclient/8.8.15_GA_4177;] security - cmd=ModifyAccount;
        name=lan.pham@hoagiang.gov.vn; zimbraPrefMailForwardingAddress=lan.pham.backup@example.net;

(each one line, wrapped here)

A log4j line: time (the server's zone, none written: read in the file source's ``timezone``, UTC
by default), level, thread, the request
context ``[key=value;...]`` (``name`` the account acting, ``oip`` the client address behind the
proxy, ``ip``, ``ua``), the category, then ``cmd=...; key=value; ...``. ``cmd=Auth`` /
``AdminAuth`` records are mail logons (:mod:`ingest.parsers.mail`; ``error=`` makes a failure);
every other command is ``{product: zimbra, service: audit}`` with its pairs under
``zimbra.audit`` by their Zimbra names (the rules' field names, see ``config/sigma/mail.yml``)
and ``event.action`` the command.
"""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import mail
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.stamps import local_stamp
from ingest.schema import Event

LOGSOURCE = {"product": "zimbra", "service": "audit"}
_LINE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<level>[A-Z]+) +\[(?P<thread>[^\]]*)\] "
                   r"\[(?P<context>[^\]]*)\] (?P<category>[\w.-]+) - (?P<body>.*)$")
_AUTH_COMMANDS = {"Auth", "AdminAuth", "AuthRequest", "PreAuth"}


def _pairs(text: str, separator: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(separator):
        key, equals, value = item.strip().partition("=")
        if equals and key:
            pairs.setdefault(key, value.strip())
    return pairs


def parse_line(line: str, *, source: str, hint: str = "", zone: tzinfo = UTC) -> tuple[str, Event]:
    match = _LINE.match(line)
    if match is None:
        raise ParseError("not a Zimbra audit log line (time LEVEL [thread] [context] category - ...)", source=source)
    seconds, _, fraction = match["time"].partition(",")
    try:
        timestamp = local_stamp(seconds, fraction, "%Y-%m-%d %H:%M:%S", zone, what="Zimbra")
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    context = _pairs(match["context"], ";")
    pairs = _pairs(match["body"], ";")
    command = pairs.get("cmd", "")
    event: Event = {
        "@timestamp": timestamp,
        "event": {"kind": "event", "module": "zimbra", "dataset": "zimbra.audit", "original": line},
        "log": {"level": match["level"].lower(), "logger": match["category"]},
        "zimbra": {"audit": pairs, "context": context, "thread": match["thread"]},
    }
    client = context.get("oip") or context.get("ip")
    if context.get("ua"):
        event["user_agent"] = {"original": context["ua"]}
    if command in _AUTH_COMMANDS:
        failure = pairs.get("error")
        mail.authentication(event, outcome="failure" if failure else "success",
                            user=pairs.get("account") or context.get("name"), ip=client, reason=failure)
        event["event"]["action"] = command
        if pairs.get("protocol"):
            event["network"] = {"protocol": pairs["protocol"]}
        return "zimbra.audit", event
    event["event"]["category"] = ["iam"] if "Account" in command or "Password" in command else ["configuration"]
    event["event"]["action"] = command or "unknown"
    if "error" in pairs:
        event["event"]["outcome"] = "failure"
    user: dict[str, Any] = {}
    if context.get("name"):
        user["name"] = context["name"]
    target = pairs.get("name") or pairs.get("account")
    if target and target != user.get("name"):
        user["target"] = {"name": target}
    if user:
        event["user"] = user
    if client:
        event["source"] = mail.endpoint(client)
    event["socflow"] = {"logsource": dict(LOGSOURCE)}
    return "zimbra.audit", event


def looks_like(line: str) -> bool:
    return _LINE.match(line) is not None and " security - cmd=" in line


FORMATS = (
    SourceFormat(
        name="zimbra", title="Zimbra audit log (audit.log: admin and account commands; logons: mail-auth)",
        logsource=LOGSOURCE,
        sample="2026-11-22 10:05:00,456 INFO  [qtp1234567-90:https://mail.hoagiang.gov.vn:7071/service/admin/soap/"
               "ModifyAccountRequest] [name=admin@hoagiang.gov.vn;oip=203.0.113.66;ua=zclient/8.8.15_GA_4177;] "
               "security - cmd=ModifyAccount; name=lan.pham@hoagiang.gov.vn; "
               "zimbraPrefMailForwardingAddress=lan.pham.backup@example.net;",
        parse=parse_line, looks_like=looks_like, aliases=("zimbra-audit",)),
)
