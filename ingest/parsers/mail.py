"""What the mail server logs (Postfix, Dovecot, Zimbra, Exchange) share.

Authentication records of every mail server get one Sigma logsource, ``{product: socflow,
service: mail-auth}`` (the official mail's logons, whatever server took them), with
``event.outcome``, ``user.name`` and ``source.ip``: the project's mail rules
(``rules/mail/mail_login_failed.yml`` and the password-spraying correlation built on it) then
cover webmail, IMAP/POP3 and SMTP submission alike. Mail transport records get ``{product:
socflow, service: mail}`` and ECS ``email.*`` fields.
"""

from __future__ import annotations

from typing import Any

from ingest.parsers.dns import endpoint
from ingest.schema import Event

MAIL_AUTH = {"product": "socflow", "service": "mail-auth"}
MAIL = {"product": "socflow", "service": "mail"}

__all__ = ["MAIL", "MAIL_AUTH", "address", "authentication", "endpoint", "transport"]


def address(text: str | None) -> str | None:
    """``<a@b>`` -> ``a@b``; the null sender ``<>`` and ``-`` -> None."""
    if text is None:
        return None
    stripped = text.strip().strip("<>").strip()
    return stripped if stripped and stripped != "-" else None


def authentication(event: Event, *, outcome: str | None, user: str | None, ip: str | None,
                   action: str = "login", reason: str | None = None) -> None:
    """Make ``event`` a mail logon record (in place)."""
    meta = event["event"]
    meta["category"] = ["authentication"]
    meta["action"] = action
    if outcome:
        meta["outcome"] = outcome
    if reason:
        meta["reason"] = reason
    if user:
        event["user"] = {"name": user}
    if ip:
        event["source"] = {**event.get("source", {}), **endpoint(ip)}
    event.setdefault("socflow", {})["logsource"] = dict(MAIL_AUTH)


def transport(event: Event, *, action: str, email: dict[str, Any] | None = None) -> None:
    """Make ``event`` a mail transport record (in place)."""
    event["event"]["category"] = ["email"]
    event["event"]["action"] = action
    if email:
        event["email"] = email
    event.setdefault("socflow", {})["logsource"] = dict(MAIL)
