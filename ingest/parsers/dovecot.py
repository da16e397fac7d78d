"""Dovecot (IMAP/POP3/submission) logins and authentication, over syslog or in its own log file.

Through syslog the ident is ``dovecot`` and the message starts with the process
(``dovecot: imap-login: Login: ...``); Dovecot's own ``log_path`` file puts the process where a
syslog program goes and a level after it (``imap-login: Info: Login: ...``). Read::

    imap-login: Login: user=<an@hoagiang.gov.vn>, method=PLAIN, rip=10.10.1.25, lip=10.10.0.25, mpid=42, TLS, ...
    imap-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=..., lip=..., ...
    pop3-login: Disconnected (auth failed, 3 attempts in 12 secs): user=<x>, method=PLAIN, rip=..., lip=...
    imap-login: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=..., lip=...
    auth-worker(1234): pam(x,198.51.100.23,<sess>): pam_authenticate() failed: Authentication failure (...)

A ``Login`` is a successful mail logon, a login process line saying ``auth failed`` a failed
one (:mod:`ingest.parsers.mail`: ``user.name``, ``source.ip`` the remote ``rip``,
``destination.ip`` the local ``lip``); the auth process' own lines (password mismatch, unknown
user) repeat what the login process says and stay mail records, so one attempt is one logon.
``network.protocol`` is the service (imap, pop3...); ``dovecot.method``, ``.session``,
``.tls`` keep the rest.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.parsers import linux, mail
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event

_LEVEL = re.compile(r"(?:Info|Warning|Error|Fatal|Panic|Debug): ")
# A mail process names its user: "imap(an.nguyen@hoagiang.gov.vn)<4242><aBcD1234>: Logged out ...".
_PROCESS = re.compile(r"(?P<process>[\w-]+-login|auth|auth-worker\(\d+\)|imap|pop3|lmtp|submission|managesieve)"
                      r"(?:\((?P<user>[^()\s]*)\))?(?:<[^<>\s]*>)*: ")
# "Aborted login (auth failed, 1 attempts in 2 secs): user=..." (2.2, 2.3), "Login aborted: Connection
# closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=..." (2.3.14 on): the words between
# the verb and the pairs are the reason.
_LOGIN = re.compile(r"(?P<what>Login aborted|Login|Aborted login|Disconnected|Connection closed)"
                    r"(?P<why>[^=]*?): (?P<pairs>(?:user|method|rip|lip)=.*)$")
_AUTH_DB = re.compile(r"(?P<db>[\w-]+)\((?P<user>[^,()]*),(?P<ip>[^,()]*)(?:,<[^>]*>)?\): (?P<text>.*)$")
_PAIR = re.compile(r"(?<!\w)(\w+)=(<[^>]*>|[^,\s]*)|\b(TLS|secured)\b")
_FAILURE = ("auth failed", "auth_failed", "authentication failed", "password mismatch", "unknown user")


def _pairs(text: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for key, value, flag in _PAIR.findall(text):
        if flag:
            pairs[flag.lower()] = True
        else:
            pairs.setdefault(key, value[1:-1] if value.startswith("<") else value)
    return pairs


def message_event(event: Event, process: str, text: str) -> bool:  # noqa: PLR0912 - one branch per record kind
    """Fill a syslog event from a Dovecot ``process`` message; False when it is not one Dovecot logs."""
    meta = event["event"]
    meta["module"], meta["dataset"] = "dovecot", "dovecot.log"
    login = _LOGIN.match(text) if process.endswith("-login") else None
    if login:
        pairs = _pairs(login["pairs"])
        why = login["why"].strip(" :")
        service = process[: -len("-login")]
        dovecot = {key: pairs[key] for key in ("method", "session", "mpid", "tls") if pairs.get(key)}
        if login["what"] == "Login" and not why:
            mail.authentication(event, outcome="success", user=pairs.get("user"), ip=pairs.get("rip"))
        elif any(words in why.lower() for words in _FAILURE):
            mail.authentication(event, outcome="failure", user=pairs.get("user") or None, ip=pairs.get("rip"),
                                reason=why)
        else:
            mail.transport(event, action="disconnected")
            if why:
                meta["reason"] = why
            if pairs.get("rip"):
                event["source"] = mail.endpoint(pairs["rip"])
            if pairs.get("user"):
                event["user"] = {"name": pairs["user"]}
        if pairs.get("lip"):
            event["destination"] = mail.endpoint(pairs["lip"])
        event["network"] = {"protocol": service}
        if dovecot:
            event["dovecot"] = dovecot
        return True
    checked = _AUTH_DB.match(text) if process.startswith("auth") else None
    mail.transport(event, action="auth_check" if checked else "other")
    if checked:
        meta["reason"] = checked["text"]
        if any(words in checked["text"].lower() for words in _FAILURE) or "failed" in checked["text"]:
            meta["outcome"] = "failure"
        if checked["user"]:
            event["user"] = {"name": checked["user"]}
        if checked["ip"]:
            event["source"] = mail.endpoint(checked["ip"])
        event["dovecot"] = {"passdb": checked["db"]}
    return True


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    program = message.appname or ""
    text = message.message
    if program == "dovecot":
        process = _PROCESS.match(text)
        if process is None:
            return message_event(event, "dovecot", text)
        message_event(event, process["process"], text[process.end():])
        if process["user"] and not process["user"].isdigit() and "user" not in event:
            event["user"] = {"name": process["user"]}
        return True
    # Dovecot's own log file: "imap-login: Info: Login: ..." (the process as the program, then a level).
    level = _LEVEL.match(text)
    if level and _PROCESS.fullmatch(program + ": "):
        return message_event(event, program.split("(", 1)[0], text[level.end():])
    return False


FORMATS = (
    SourceFormat(
        name="dovecot", title="Dovecot IMAP/POP3 logins and auth (syslog or log_path file)",
        logsource=mail.MAIL_AUTH,
        sample="Nov 22 10:00:02 mail-imap01 dovecot: imap-login: Aborted login (auth failed, 1 attempts in 2 secs): "
               "user=<an.nguyen@hoagiang.gov.vn>, method=PLAIN, rip=198.51.100.23, lip=10.10.0.25, TLS, "
               "session=<kT3lP2hBoMDGM2Qf>",
        parse=linux.parse_syslog_file_line, syslog=syslog_hook),
)
