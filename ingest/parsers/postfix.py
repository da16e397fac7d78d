"""Postfix logs (``postfix/smtpd``, ``qmgr``, ``smtp``, ``cleanup``...), as syslog messages.

The records read (Postfix's own wording; ``QUEUEID:`` starts the per-message ones)::

    postfix/smtpd[4123]: connect from unknown[198.51.100.23]
    postfix/smtpd[4123]: warning: unknown[198.51.100.23]: SASL LOGIN authentication failed: UGFzc3dvcmQ6,
        sasl_username=an.nguyen@hoagiang.gov.vn
    postfix/smtpd[4123]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 454 4.7.1 <x@example.net>: Relay access
        denied; from=<a@b> to=<x@example.net> proto=ESMTP helo=<ylmf-pc>
    postfix/submission/smtpd[4200]: 3F1A52C0B12: client=ag-001-pc03[10.10.1.25], sasl_method=PLAIN,
        sasl_username=an.nguyen@hoagiang.gov.vn
    postfix/qmgr[1201]: 3F1A52C0B12: from=<an.nguyen@hoagiang.gov.vn>, size=2345, nrcpt=1 (queue active)
    postfix/smtp[4135]: 3F1A52C0B12: to=<x@example.com>, relay=mx.example.com[93.184.216.34]:25, delay=0.8,
        delays=0.1/0/0.3/0.4, dsn=2.0.0, status=sent (250 2.0.0 OK)

(each one line, wrapped here; older Postfix versions log a failure without its sasl_username)

SASL outcomes are mail logons (:mod:`ingest.parsers.mail`: ``user.name`` is the SASL user when
Postfix logs it, ``source.ip`` the client); the rest are transport records: ``email.local_id``
(the queue id), ``email.from.address`` / ``email.to.address``, ``email.message_id``,
``destination`` the relay, ``event.outcome`` of a delivery (sent: success, bounced: failure),
and Postfix's own values under ``postfix`` (``size``, ``nrcpt``, ``dsn``, ``status``, ``delay``...).
"""

from __future__ import annotations

import re
from typing import Any

from ingest.parsers import linux, mail
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event

_CLIENT = r"(?P<host>[^\s\[\]]+)\[(?P<ip>[0-9A-Fa-f.:]+)\](?::(?P<port>\d+))?"
_QUEUE_ID = re.compile(r"(?P<qid>[0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}|NOQUEUE): ")
_SASL_FAILED = re.compile(r"warning: " + _CLIENT + r": SASL (?P<mech>[\w-]+) authentication failed: ?(?P<reason>.*?)"
                          r"(?:, sasl_username=(?P<user>\S+))?$")
_CONNECT = re.compile(r"(?P<what>connect|disconnect|lost connection after \w+|timeout after \w+) from " + _CLIENT)
_REJECT = re.compile(r"(?P<verb>reject|reject_warning|discard|hold): (?P<stage>\S+) from " + _CLIENT +
                     r": (?P<reason>.*?); (?P<rest>.*)$")
_KV = re.compile(r"(?<![\w-])([\w-]+)=(<[^>]*>|\([^)]*\)|[^,\s]*)(?: \((?P<note>[^)]*)\))?")
_INT_FIELDS = ("size", "nrcpt", "port")


def _client(match: re.Match[str]) -> dict[str, Any]:
    fields = mail.endpoint(match["ip"], match["port"])
    if match["host"] != "unknown":
        fields["domain"] = match["host"]
    return fields


def _pairs(text: str) -> tuple[dict[str, str], str | None]:
    """``k=v, k=v (note)`` pairs (Postfix's per-message records) and the status note."""
    pairs: dict[str, str] = {}
    note = None
    for found in _KV.finditer(text):
        pairs.setdefault(found[1], found[2])
        note = found["note"] or note
    return pairs, note


def message_event(event: Event, text: str) -> None:  # noqa: PLR0912 - one branch per record kind
    """Fill a syslog event (holding the syslog fields) from a Postfix message."""
    meta = event["event"]
    meta["module"], meta["dataset"] = "postfix", "postfix.log"
    postfix: dict[str, Any] = {}
    queue = _QUEUE_ID.match(text)
    body = text[queue.end():] if queue else text
    if queue and queue["qid"] != "NOQUEUE":
        postfix["queue_id"] = queue["qid"]
    if failed := _SASL_FAILED.match(body):
        mail.authentication(event, outcome="failure", user=failed["user"], ip=failed["ip"], action="sasl_login",
                            reason=f"SASL {failed['mech']} authentication failed" +
                                   (f": {failed['reason']}" if failed["reason"] else ""))
        event["source"] = _client(failed)
        postfix["sasl_method"] = failed["mech"]
    elif rejected := _REJECT.match(body):
        pairs, _ = _pairs(rejected["rest"])
        email = {key: {"address": [value]} for key, value in
                 (("from", mail.address(pairs.get("from"))), ("to", mail.address(pairs.get("to")))) if value}
        mail.transport(event, action=rejected["verb"], email=email)
        meta["outcome"], meta["reason"] = "failure", rejected["reason"]
        event["source"] = _client(rejected)
        postfix["stage"] = rejected["stage"]
        postfix.update({key: value.strip("<>") for key, value in pairs.items() if key in ("proto", "helo")})
    elif connected := _CONNECT.match(body):
        mail.transport(event, action=connected["what"].replace(" ", "_"))
        event["source"] = _client(connected)
    else:
        pairs, note = _pairs(body)
        if not pairs:
            mail.transport(event, action="message" if queue else "other")
        elif "client" in pairs:
            client = re.fullmatch(_CLIENT, pairs["client"])
            user = pairs.get("sasl_username")
            if user:
                mail.authentication(event, outcome="success", user=user, ip=client["ip"] if client else None,
                                    action="sasl_login")
            else:
                mail.transport(event, action="client")
            if client:
                event["source"] = _client(client)
            if pairs.get("sasl_method"):
                postfix["sasl_method"] = pairs["sasl_method"]
        else:
            _transport_pairs(event, pairs, note, postfix)
    if queue and queue["qid"] != "NOQUEUE":
        event.setdefault("email", {})["local_id"] = queue["qid"]
    if postfix:
        event["postfix"] = postfix


def _transport_pairs(event: Event, pairs: dict[str, str], note: str | None, postfix: dict[str, Any]) -> None:
    email: dict[str, Any] = {}
    if sender := mail.address(pairs.get("from")):
        email["from"] = {"address": [sender]}
    if recipient := mail.address(pairs.get("to")):
        email["to"] = {"address": [recipient]}
    if message_id := mail.address(pairs.get("message-id")):
        email["message_id"] = message_id
    status = pairs.get("status")
    action = "delivery" if status else "queued" if "from" in pairs else "message_id" if email.get("message_id") \
        else "message"
    mail.transport(event, action=action, email=email)
    if status:
        event["event"]["outcome"] = {"sent": "success", "bounced": "failure"}.get(status, "unknown")
        if note:
            event["event"]["reason"] = note
    relay = re.fullmatch(_CLIENT, pairs.get("relay", ""))
    if relay:
        event["destination"] = _client(relay)
    for key in ("size", "nrcpt", "delay", "delays", "dsn", "status", "relay", "orig_to"):
        value = pairs.get(key)
        if value:
            postfix[key] = int(value) if key in _INT_FIELDS and value.isdigit() else value


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    program = message.appname or ""
    # "postfix/smtpd", "postfix/submission/smtpd", a second instance's "postfix-out/smtp".
    if not program.startswith("postfix") or "/" not in program:
        return False
    message_event(event, message.message)
    return True


FORMATS = (
    SourceFormat(
        name="postfix", title="Postfix MTA (syslog/mail.log: smtpd, qmgr, smtp, cleanup; SASL logons: mail-auth)",
        logsource=mail.MAIL,
        sample="Nov 22 10:00:05 mail-mx01 postfix/smtpd[4130]: NOQUEUE: reject: RCPT from unknown[203.0.113.7]: "
               "454 4.7.1 <bulk@example.org>: Relay access denied; from=<promo@example.com> to=<bulk@example.org> "
               "proto=ESMTP helo=<ylmf-pc>",
        parse=linux.parse_syslog_file_line, syslog=syslog_hook),
)
