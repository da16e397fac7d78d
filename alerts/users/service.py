"""User changes with their audit record: one code path for the CLI, the API and the admin pages.

The audit record (``before`` and ``after``: the user without secrets) is appended inside the
users file's lock, after the change is checked and before the file is written: when the record
cannot be written (Elasticsearch down) ``AuditError`` is raised and nothing changes. A user
change without its record would be exactly what an audit trail exists to rule out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.audit.trail import AuditTrail
from alerts.users.store import Hook, User, UserError, UserStore


@dataclass(frozen=True)
class Actor:
    """Who makes a change, when, and from where (``source_ip`` None for the CLI)."""

    name: str
    now: datetime
    source_ip: str | None = None


def _recorder(audit: AuditTrail, actor: Actor, action: str, name: str, **extra: Any) -> Hook:
    def record(before: User | None, after: User) -> None:
        audit.append(actor=actor.name, action=action, target=f"user:{name}",
                     before=before.public() if before else None, after={**after.public(), **extra},
                     now=actor.now, source_ip=actor.source_ip)

    return record


def add_user(store: UserStore, audit: AuditTrail, actor: Actor, name: str, *, role: str, password: str) -> User:
    return store.add(name, role, password, now=actor.now, before_write=_recorder(audit, actor, "user_add", name))


def set_password(store: UserStore, audit: AuditTrail, actor: Actor, name: str, password: str) -> User:
    return store.set_password(name, password, now=actor.now,
                              before_write=_recorder(audit, actor, "user_password", name))


def set_disabled(store: UserStore, audit: AuditTrail, actor: Actor, name: str, disabled: bool) -> User:
    if disabled and name == actor.name:
        raise UserError("you cannot disable your own account")
    return store.set_disabled(name, disabled, before_write=_recorder(
        audit, actor, "user_disable" if disabled else "user_enable", name))


def set_role(store: UserStore, audit: AuditTrail, actor: Actor, name: str, role: str) -> User:
    current = store.get(name)
    if current is not None and name == actor.name and role != current.role:
        raise UserError("you cannot change your own role")
    return store.set_role(name, role, before_write=_recorder(audit, actor, "user_role", name))


def new_token(store: UserStore, audit: AuditTrail, actor: Actor, name: str, label: str = "") -> tuple[User, str]:
    def record(before: User | None, after: User) -> None:
        _recorder(audit, actor, "user_token_add", name, token_id=after.tokens[-1].id)(before, after)

    return store.new_token(name, now=actor.now, label=label, before_write=record)


def revoke_token(store: UserStore, audit: AuditTrail, actor: Actor, name: str, token_id: str) -> User:
    return store.revoke_token(name, token_id, before_write=_recorder(audit, actor, "user_token_revoke", name,
                                                                     token_id=token_id))
