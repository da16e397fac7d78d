"""User management API (admins): list, add, disable/enable, role, password, API tokens.

Every change goes through ``alerts.users.service`` and so into the audit trail. A token is in
the answer of ``POST /api/users/{name}/tokens`` and nowhere else, ever.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from alerts.api.context import console
from alerts.api.security import AdminUser, client_address
from alerts.users import service
from alerts.users.store import User

router = APIRouter(prefix="/api/users", tags=["users"])
UserName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9._-]*$")]
Role = Annotated[str, Field(pattern="^(analyst|admin|auditor)$")]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=64, pattern=r"^[a-z][a-z0-9._-]*$")
    role: Role
    password: str = Field(min_length=1, max_length=1024)


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=1024)


class NewRole(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("", max_length=200)


def _actor(request: Request, user: User) -> service.Actor:
    return service.Actor(user.name, console(request).clock(), client_address(request))


@router.get("")
def list_users(request: Request, user: AdminUser) -> list[dict[str, Any]]:
    """Every user, without secrets."""
    return [u.public() for u in console(request).users.list()]


@router.post("", status_code=201)
def add_user(request: Request, user: AdminUser, body: NewUser) -> dict[str, Any]:
    state = console(request)
    return service.add_user(state.users, state.audit, _actor(request, user), body.name, role=body.role,
                            password=body.password).public()


@router.post("/{name}/disable")
def disable_user(request: Request, user: AdminUser, name: UserName) -> dict[str, Any]:
    state = console(request)
    changed = service.set_disabled(state.users, state.audit, _actor(request, user), name, True)
    state.sessions.end_user(name)
    return changed.public()


@router.post("/{name}/enable")
def enable_user(request: Request, user: AdminUser, name: UserName) -> dict[str, Any]:
    state = console(request)
    return service.set_disabled(state.users, state.audit, _actor(request, user), name, False).public()


@router.post("/{name}/role")
def set_role(request: Request, user: AdminUser, name: UserName, body: NewRole) -> dict[str, Any]:
    state = console(request)
    changed = service.set_role(state.users, state.audit, _actor(request, user), name, body.role)
    state.sessions.end_user(name)
    return changed.public()


@router.post("/{name}/password")
def set_password(request: Request, user: AdminUser, name: UserName, body: NewPassword) -> dict[str, Any]:
    state = console(request)
    changed = service.set_password(state.users, state.audit, _actor(request, user), name, body.password)
    state.sessions.end_user(name)
    return changed.public()


@router.post("/{name}/tokens", status_code=201)
def new_token(request: Request, user: AdminUser, name: UserName, body: NewToken) -> dict[str, Any]:
    """A new API token for ``name``: shown in this answer only."""
    state = console(request)
    changed, token = service.new_token(state.users, state.audit, _actor(request, user), name, body.label)
    return {"user": changed.public(), "token_id": changed.tokens[-1].id, "token": token}


@router.delete("/{name}/tokens/{token_id}")
def revoke_token(request: Request, user: AdminUser, name: UserName,
                 token_id: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")]) -> dict[str, Any]:
    state = console(request)
    return service.revoke_token(state.users, state.audit, _actor(request, user), name, token_id).public()
