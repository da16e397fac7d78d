"""``socflow users``: console users, roles, passwords and API tokens (each change audited)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime

from alerts.audit.trail import AuditError, AuditTrail
from alerts.indexer import connect
from alerts.settings import Settings
from alerts.users import service
from alerts.users.store import ROLES, UserError, UserStore
from alerts.web.inert import inert


def _store(settings: Settings) -> UserStore:
    return UserStore(settings.console_dir / "users.json", min_password_length=settings.console.min_password_length)


def _trail(settings: Settings) -> AuditTrail:
    return AuditTrail(connect(settings.elasticsearch), settings.console.audit_index,
                      settings.audit_dir / "chain-head")


def _actor() -> service.Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = f"uid:{os.getuid()}"
    return service.Actor(f"cli:{who}", datetime.now(UTC))


def read_password(prompt: str = "Password: ", *, confirm: bool = True) -> str:
    """From the terminal without echo (asked twice), or the first line of stdin when it is not a TTY."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def handler(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    if args.users_command == "list":
        users = store.list()
        if not users:
            print("no users yet: socflow users add NAME --role analyst|admin|auditor")
        for user in users:
            tokens = f"{len(user.tokens)} token(s)" if user.tokens else "no tokens"
            print(f"{inert(user.name):20} {user.role:8} {'disabled' if user.disabled else 'active':8} "
                  f"password changed {user.password_changed}  {tokens}")
        return 0
    trail = _trail(settings)
    actor = _actor()
    try:
        if args.users_command == "add":
            service.add_user(store, trail, actor, args.name, role=args.role, password=read_password())
            print(f"added {args.name} ({args.role})")
        elif args.users_command == "passwd":
            service.set_password(store, trail, actor, args.name, read_password("New password: "))
            print(f"password of {args.name} changed; their sessions end at their next request")
        elif args.users_command in ("disable", "enable"):
            service.set_disabled(store, trail, actor, args.name, args.users_command == "disable")
            print(f"{args.name} {args.users_command}d")
        elif args.users_command == "role":
            service.set_role(store, trail, actor, args.name, args.role)
            print(f"{args.name} is now {args.role}")
        elif args.users_command == "token":
            if args.revoke:
                service.revoke_token(store, trail, actor, args.name, args.revoke)
                print(f"token {args.revoke} of {args.name} revoked")
            else:
                user, token = service.new_token(store, trail, actor, args.name, args.label)
                print(f"# API token {user.tokens[-1].id} for {args.name}; shown once, store it now:", file=sys.stderr)
                print(token)
    except AuditError as error:
        print(f"socflow: error: nothing changed: the audit record could not be written: {error}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "users", help="console users, roles, passwords and API tokens",
        description="Manage the console's users (<data-dir>/console/users.json). Passwords are read from the "
        "terminal, or from the first line of stdin when it is not a terminal; never from an argument. Every "
        "change is written to the audit trail.")
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    sub.add_parser("list", help="list users")
    for name, text in (("disable", "disable a user (sessions and tokens stop working)"), ("enable", "enable a user"),
                       ("passwd", "set a user's password (asks for it)")):
        sub.add_parser(name, help=text).add_argument("name")
    role = sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("--role", required=True, choices=ROLES)
    token = sub.add_parser("token", help="print a new API token for scripts (shown once), or revoke one")
    token.add_argument("name")
    token.add_argument("--label", default="", help="what the token is for")
    token.add_argument("--revoke", metavar="TOKEN_ID", help="revoke this token instead")
    parser.set_defaults(handler=handler)
