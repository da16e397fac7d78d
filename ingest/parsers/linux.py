"""Linux logs: auth/sshd, sudo and su (syslog lines), auditd records, plain syslog files.

``enrich_program`` reads what sshd, sudo, su, PAM and useradd say in a syslog message and
adds ECS fields (``user.name``, ``source.ip``, ``event.outcome``, ``event.action``,
``process.command_line``...) and the Sigma logsource: sshd -> ``{product: linux, service:
sshd}``, sudo -> ``{product: linux, service: sudo}``, other authentication programs ->
``{product: linux, service: auth}``, anything else -> ``{product: linux, service: syslog}``
(``auth`` when it came from an auth log or the auth facilities).

auditd: one record per line, ``type=T msg=audit(EPOCH:SERIAL): key=value ...``; values are
kept under ``auditd.log`` by their auditd names (Sigma's auditd rules use those names), with
hex-encoded strings decoded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from ingest.errors import ParseError
from ingest.normalize import coerce_timestamp
from ingest.parsers import catalogue, syslog
from ingest.schema import Event

_AUTH_PROGRAMS = {"su", "login", "passwd", "useradd", "userdel", "usermod", "groupadd", "groupdel", "chpasswd",
                  "chage", "systemd-logind", "polkitd", "gdm-password", "lightdm", "cron", "crond", "sshd-session"}
_AUTH_FACILITIES = {4, 10}

_SSHD = [
    (re.compile(r"Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)"),
     "ssh_login", "success"),
    (re.compile(r"Failed (?P<method>\S+) for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+) port (?P<port>\d+)"),
     "ssh_login", "failure"),
    (re.compile(r"Invalid user (?P<user>\S*) from (?P<ip>\S+)(?: port (?P<port>\d+))?"), "invalid_user", "failure"),
    (re.compile(r"Connection closed by (?:(?:authenticating|invalid) user (?P<user>\S+) )?(?P<ip>[0-9a-fA-F:.]+)"
                r" port (?P<port>\d+)"), "connection_closed", None),
    (re.compile(r"Disconnected from (?:(?:authenticating |invalid )?user (?P<user>\S+) )?(?P<ip>[0-9a-fA-F:.]+)"
                r" port (?P<port>\d+)"), "disconnected", None),
    (re.compile(r"Received disconnect from (?P<ip>[0-9a-fA-F:.]+) port (?P<port>\d+)"), "disconnected", None),
    (re.compile(r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+)"
                r" port (?P<port>\d+)"), "max_auth_attempts", "failure"),
    (re.compile(r"Did not receive identification string from (?P<ip>\S+)(?: port (?P<port>\d+))?"),
     "no_identification", "failure"),
]
_PAM_SESSION = re.compile(r"pam_unix\((?P<service>[^:)]+):session\): session (?P<state>opened|closed) for user "
                          r"(?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*))?")
_PAM_FAILURE = re.compile(r"pam_unix\((?P<service>[^:)]+):auth\): authentication failure;(?P<rest>.*)")
_SUDO = re.compile(r"^\s*(?P<user>\S+) : (?:(?P<problem>[^;]*?) ; )?TTY=(?P<tty>[^;]*?) ; PWD=(?P<pwd>[^;]*?) ; "
                   r"USER=(?P<target>[^;]*?) ;(?: [A-Z]+=[^;]*? ;)* COMMAND=(?P<command>.*)$")
_SU_FAILED = re.compile(r"FAILED SU \(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)")
_NEW_USER = re.compile(r"new user: name=(?P<user>[^,\s]+)")
_KV = re.compile(r"(?<!\w)(\w+)=(\S*)")


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _logsource(service: str) -> dict[str, str]:
    return {"product": "linux", "service": service}


def enrich_program(  # noqa: PLR0911, PLR0912, PLR0915 - one branch per program
    event: Event, message: syslog.SyslogMessage, *, auth_log: bool = False
) -> Event:
    """Add program-specific fields and the Sigma logsource to a syslog event (in place).

    The catalogued formats (``ingest.parsers.catalogue``: firewalls, CEF, Snare...) see the
    message first; the Linux programs below are the fallback.
    """
    for hook in catalogue.syslog_hooks():
        if hook(event, message):
            return event
    program = (message.appname or "").lower()
    text = message.message
    meta = event["event"]
    if program in ("sshd", "sshd-session"):
        event["socflow"] = {"logsource": _logsource("sshd")}
        meta["dataset"] = "linux.auth"
        meta["category"] = ["authentication"]
        for pattern, action, outcome in _SSHD:
            match = pattern.search(text)
            if match:
                groups = match.groupdict()
                meta["action"] = action
                if outcome:
                    meta["outcome"] = outcome
                if groups.get("user"):
                    event["user"] = {"name": groups["user"]}
                source: dict[str, Any] = {"ip": groups["ip"]}
                if _int(groups.get("port")) is not None:
                    source["port"] = _int(groups.get("port"))
                event["source"] = source
                if groups.get("method"):
                    event["linux"] = {"auth": {"method": groups["method"]}}
                break
        else:
            _pam(event, text)
        return event
    if program == "sudo":
        event["socflow"] = {"logsource": _logsource("sudo")}
        meta["dataset"] = "linux.sudo"
        match = _SUDO.match(text)
        if match:
            event["user"] = {"name": match["user"], "effective": {"name": match["target"]}}
            event["process"]["command_line"] = match["command"]
            event["process"]["working_directory"] = match["pwd"]
            meta["action"] = "sudo_command"
            meta["outcome"] = "failure" if match["problem"] else "success"
            if match["problem"]:
                meta["reason"] = match["problem"].strip()
        else:
            _pam(event, text)
        return event
    if program in _AUTH_PROGRAMS or auth_log or message.facility in _AUTH_FACILITIES:
        event["socflow"] = {"logsource": _logsource("auth")}
        meta["dataset"] = "linux.auth"
        if program == "su":
            failed = _SU_FAILED.search(text)
            if failed:
                event["user"] = {"name": failed["user"], "effective": {"name": failed["target"]}}
                meta["action"], meta["outcome"] = "su", "failure"
                return event
        new_user = _NEW_USER.search(text)
        if new_user:
            event["user"] = {"name": new_user["user"]}
            meta["action"] = "user_created"
            return event
        _pam(event, text)
        return event
    event["socflow"] = {"logsource": _logsource("cron" if program in ("cron", "crond") else "syslog")}
    meta["dataset"] = "linux.syslog"
    return event


def _pam(event: Event, text: str) -> None:
    meta = event["event"]
    session = _PAM_SESSION.search(text)
    if session:
        event["user"] = {"name": session["user"]}
        meta["action"] = f"session_{session['state']}"
        if session["by"]:
            event["user"]["effective"] = {"name": session["user"]}
            event["user"]["name"] = session["by"] or session["user"]
        return
    failure = _PAM_FAILURE.search(text)
    if failure:
        fields = dict(_KV.findall(failure["rest"]))
        meta["action"], meta["outcome"] = "authentication_failure", "failure"
        user = fields.get("user") or fields.get("ruser") or fields.get("logname")
        if user:
            event["user"] = {"name": user}
        if fields.get("rhost"):
            event["source"] = {"address": fields["rhost"]}


# -- file lines and sniffing -----------------------------------------------------------------------

_SNIFF_BSD = re.compile(r"^(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) ")
_SNIFF_AUTH = re.compile(r" (?:sshd|sudo|su|login|passwd|useradd|systemd-logind|sshd-session)(?:\[\d+\])?: ")


def looks_like_syslog(line: str) -> bool:
    return bool(_SNIFF_BSD.match(line))


def looks_like_auth(line: str) -> bool:
    return bool(_SNIFF_BSD.match(line) and _SNIFF_AUTH.search(line))


def looks_like_audit(line: str) -> bool:
    return line.startswith(("type=", "node=")) and "msg=audit(" in line


def parse_syslog_file_line(line: str, *, source: str, hint: str = "", received: datetime | None = None,
                           zone: tzinfo = UTC) -> tuple[str, Event]:
    """A line of a syslog-format file; auth logs (by file name) tag everything as auth."""
    try:
        message = syslog.parse_file_line(line, received=received or datetime.now(UTC), zone=zone)
    except ParseError as error:
        raise ParseError(error.reason, source=source) from None
    event = syslog.to_event(message, line)
    name = hint.rsplit("/", 1)[-1]
    enrich_program(event, message, auth_log=name.startswith(("auth", "secure")))
    return str(event["event"]["dataset"]), event


parse_auth_line = parse_syslog_file_line


# -- auditd ----------------------------------------------------------------------------------------

_AUDIT_HEAD = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<epoch>\d+(?:\.\d+)?):"
                         r"(?P<serial>\d+)\): ?")
_AUDIT_FIELD = re.compile(r"""(?<![\w-])([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
# Fields whose unquoted values auditd hex-encodes when they hold spaces or special characters.
_HEX_FIELDS = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "name", "comm", "exe", "proctitle",
               "cmd", "cwd", "acct", "path", "data", "old-name", "new-name", "key", "ocomm"}


def _audit_value(name: str, raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if (name in _HEX_FIELDS or re.fullmatch(r"a\d+", name)) and _HEX.match(raw):
        decoded = bytes.fromhex(raw).decode("utf-8", "replace")
        return decoded.replace("\x00", " ")  # proctitle separates argv with NUL
    return raw


def parse_audit_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:  # noqa: PLR0912 - field map
    head = _AUDIT_HEAD.match(line)
    if not head:
        raise ParseError("not an auditd record (type=... msg=audit(...):)", source=source)
    fields: dict[str, Any] = {}
    body = line[head.end():]
    for name, raw in _AUDIT_FIELD.findall(body):
        if name == "msg" and raw.startswith("'"):
            # USER_* records nest their own key=value list inside msg='...'.
            for inner_name, inner_raw in _AUDIT_FIELD.findall(raw[1:-1]):
                fields.setdefault(inner_name, _audit_value(inner_name, inner_raw))
            continue
        fields.setdefault(name, _audit_value(name, raw))
    record_type = head["type"]
    fields["type"] = record_type
    event: Event = {
        "@timestamp": coerce_timestamp(float(head["epoch"])),
        "event": {"kind": "event", "module": "auditd", "dataset": "auditd.log", "action": record_type.lower(),
                  "original": line, "sequence": int(head["serial"])},
        "auditd": {"log": fields},
        "socflow": {"logsource": _logsource("auditd")},
    }
    if head["node"]:
        event["host"] = {"name": head["node"]}
    process: dict[str, Any] = {}
    if _int(fields.get("pid")) is not None:
        process["pid"] = _int(fields.get("pid"))
    if _int(fields.get("ppid")) is not None:
        process["parent"] = {"pid": _int(fields.get("ppid"))}
    if fields.get("exe") not in (None, "?", "(null)"):
        process["executable"] = fields["exe"]
    if fields.get("comm"):
        process["name"] = fields["comm"]
    if record_type == "PROCTITLE" and fields.get("proctitle"):
        process["command_line"] = fields["proctitle"]
    if record_type == "EXECVE":
        argc = _int(fields.get("argc")) or 0
        args = [str(fields.get(f"a{index}", "")) for index in range(min(argc, 256))]
        process["args"] = args
        process["command_line"] = " ".join(args)
    if process:
        event["process"] = process
    user: dict[str, Any] = {}
    if fields.get("acct") not in (None, "?"):
        user["name"] = fields["acct"]
    if fields.get("uid") is not None:
        user["id"] = fields["uid"]
    if fields.get("auid") not in (None, "4294967295", "unset"):
        user["audit"] = {"id": fields["auid"]}
    if user:
        event["user"] = user
    if fields.get("addr") not in (None, "?", ""):
        event["source"] = {"address": fields["addr"]}
        if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", fields["addr"]):
            event["source"]["ip"] = fields["addr"]
    result = fields.get("res") or fields.get("success")
    if result in ("success", "yes"):
        event["event"]["outcome"] = "success"
    elif result in ("failed", "no"):
        event["event"]["outcome"] = "failure"
    return "auditd", event
