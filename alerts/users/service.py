"""User changes with their audit record: one code path for the CLI, the API and the admin pages.

Each function changes the users file and then appends the audit record (``before`` and
``after`` are the user without secrets). When the audit record cannot be written the change
has been made and ``AuditError`` says so; the caller shows it — never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.audit.trail import AuditTrail
from alerts.users.store import User, UserError, UserStore


@dataclass(frozen=True)
class Actor:
    """Who makes a change, when, and from where (``source_ip`` None for the CLI)."""

    name: str
    now: datetime
    source_ip: str | None = None


def _record(audit: AuditTrail, actor: Actor, action: str, name: str, *, before: User | None, after: User | None,
            extra: dict[str, Any] | None = None) -> None:
    after_value: dict[str, Any] | None = after.public() if after else None
    if extra and after_value is not None:
        after_value.update(extra)
    audit.append(actor=actor.name, action=action, target=f"user:{name}", before=before.public() if before else None,
                 after=after_value, now=actor.now, source_ip=actor.source_ip)


def add_user(store: UserStore, audit: AuditTrail, actor: Actor, name: str, *, role: str, password: str) -> User:
    user = store.add(name, role, password, now=actor.now)
    _record(audit, actor, "user_add", name, before=None, after=user)
    return user


def set_password(store: UserStore, audit: AuditTrail, actor: Actor, name: str, password: str) -> User:
    before = _existing(store, name)
    user = store.set_password(name, password, now=actor.now)
    _record(audit, actor, "user_password", name, before=before, after=user)
    return user


def set_disabled(store: UserStore, audit: AuditTrail, actor: Actor, name: str, disabled: bool) -> User:
    before = _existing(store, name)
    if disabled and name == actor.name:
        raise UserError("you cannot disable your own account")
    user = store.set_disabled(name, disabled)
    _record(audit, actor, "user_disable" if disabled else "user_enable", name, before=before, after=user)
    return user


def set_role(store: UserStore, audit: AuditTrail, actor: Actor, name: str, role: str) -> User:
    before = _existing(store, name)
    if name == actor.name and role != before.role:
        raise UserError("you cannot change your own role")
    user = store.set_role(name, role)
    _record(audit, actor, "user_role", name, before=before, after=user)
    return user


def new_token(store: UserStore, audit: AuditTrail, actor: Actor, name: str, label: str = "") -> tuple[User, str]:
    before = _existing(store, name)
    user, token = store.new_token(name, now=actor.now, label=label)
    _record(audit, actor, "user_token_add", name, before=before, after=user, extra={"token_id": user.tokens[-1].id})
    return user, token


def revoke_token(store: UserStore, audit: AuditTrail, actor: Actor, name: str, token_id: str) -> User:
    before = _existing(store, name)
    user = store.revoke_token(name, token_id)
    _record(audit, actor, "user_token_revoke", name, before=before, after=user, extra={"token_id": token_id})
    return user


def _existing(store: UserStore, name: str) -> User:
    user = store.get(name)
    if user is None:
        raise UserError(f"no user {name[:80]!r}")
    return user
