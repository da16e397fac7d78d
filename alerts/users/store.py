"""Console users and API tokens in one JSON file, ``<data-dir>/console/users.json``.

Why a file and not Elasticsearch: the console must let people log in, and say that
Elasticsearch is down, while Elasticsearch is down; a SOC has tens of users, not millions; a
file with mode 0600 is easy to back up and to reason about, and no Elasticsearch user can read
the password hashes through a search. Every change takes an exclusive ``flock`` on
``users.json.lock`` (``socflow users`` and the running console may both write), re-reads the
file, and replaces it atomically (temporary file, fsync, rename), so a reader never sees half a
file and no writer loses another's change. Readers re-read the file only when its mtime/size
changed.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile). API tokens are 256 random bits, shown once, and stored as their SHA-256: a token
cannot be guessed, so a slow hash would only slow every scripted request down. A token reads
``sfc_<token id>_<secret>``; the id finds the record, the hash is compared in constant time.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from alerts.errors import AlertsError

ROLES = ("analyst", "admin", "auditor")
NAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{1,63}")
TOKEN_PREFIX = "sfc_"  # noqa: S105 - a public marker, not a secret
# Argon2id with argon2-cffi's defaults (RFC 9106, low-memory profile: 64 MiB, 3 passes); the
# console's tests swap in a cheaper one so a login does not cost them half a second.
PASSWORD_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_HASH = PASSWORD_HASHER.hash("socflow: no such user")


class UserError(AlertsError):
    """A user change that cannot be made (unknown name, bad role, weak password...)."""

    status = 400


class UnknownUserError(UserError):
    """No user (or token) by that name."""

    status = 404


class UserExistsError(UserError):
    """A user by that name exists already."""

    status = 409


@dataclass(frozen=True)
class Token:
    """An API token's record: never the token itself."""

    id: str
    sha256: str
    created: str
    label: str = ""


@dataclass(frozen=True)
class User:
    """A console user as the rest of the console sees it (``.name``, ``.role``)."""

    name: str
    role: str
    disabled: bool = False
    created: str = ""
    password_changed: str = ""
    tokens: tuple[Token, ...] = ()

    def public(self) -> dict[str, Any]:
        """The user without secrets: what the API returns and the audit trail records."""
        return {"name": self.name, "role": self.role, "disabled": self.disabled, "created": self.created,
                "password_changed": self.password_changed,
                "tokens": [{"id": t.id, "created": t.created, "label": t.label} for t in self.tokens]}


@dataclass
class _Record:
    name: str
    role: str
    password_hash: str
    disabled: bool = False
    created: str = ""
    password_changed: str = ""
    tokens: list[dict[str, str]] = field(default_factory=list)

    def user(self) -> User:
        return User(self.name, self.role, self.disabled, self.created, self.password_changed,
                    tuple(Token(**token) for token in self.tokens))


# Called with (before, after) inside the file lock, before the file is written: the console's
# user changes write their audit record here, so a change whose record cannot be written is not
# made at all (the hook raises, nothing is written).
Hook = Callable[[User | None, User], None]


def _done(before: User | None, record: _Record, hook: Hook | None) -> User:
    after = record.user()
    if hook is not None:
        hook(before, after)
    return after


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"invalid user name {name[:80]!r}: 2-64 of a-z 0-9 . _ -, starting with a letter")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"invalid role {role[:40]!r}: one of {', '.join(ROLES)}")
    return role


class UserStore:
    """The users file: look-ups for logins and tokens, and locked atomic changes."""

    def __init__(self, path: Path, *, min_password_length: int = 12) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.min_password_length = min_password_length
        self._cache: tuple[tuple[int, int, int], dict[str, _Record]] | None = None
        self._thread_lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------

    def _load(self) -> dict[str, _Record]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        # Every write replaces the file (a new inode), so the inode alone tells a change even within
        # the clock's granularity; mtime and size guard against an edit in place by hand.
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            records = {item["name"]: _Record(**item) for item in data["users"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"unreadable users file: {error}", source=str(self.path)) from error
        self._cache = (key, records)
        return records

    def get(self, name: str) -> User | None:
        record = self._load().get(name)
        return record.user() if record else None

    def list(self) -> list[User]:
        return [record.user() for _, record in sorted(self._load().items())]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs and they are enabled; else None (same cost)."""
        record = self._load().get(name)
        try:
            PASSWORD_HASHER.verify(record.password_hash if record else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if record is None or record.disabled:
            return None
        if PASSWORD_HASHER.check_needs_rehash(record.password_hash):
            self._rehash(name, password)
        return record.user()

    def authenticate_token(self, token: str) -> User | None:
        """The enabled user owning API ``token``, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, _, _secret = token[len(TOKEN_PREFIX):].partition("_")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        for record in self._load().values():
            for stored in record.tokens:
                if stored["id"] == token_id and hmac.compare_digest(stored["sha256"], digest):
                    return None if record.disabled else record.user()
        return None

    # -- changing --------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, *, now: datetime, before_write: Hook | None = None) -> User:
        check_name(name)
        check_role(role)
        self._check_password(password)
        with self._change() as records:
            if name in records:
                raise UserExistsError(f"user {name!r} exists")
            records[name] = _Record(name, role, PASSWORD_HASHER.hash(password), created=_iso(now),
                                    password_changed=_iso(now))
            return _done(None, records[name], before_write)

    def set_password(self, name: str, password: str, *, now: datetime, before_write: Hook | None = None) -> User:
        self._check_password(password)
        with self._change() as records:
            record = self._existing(records, name)
            before = record.user()
            record.password_hash = PASSWORD_HASHER.hash(password)
            record.password_changed = _iso(now)
            return _done(before, record, before_write)

    def set_disabled(self, name: str, disabled: bool, *, before_write: Hook | None = None) -> User:
        """Disable (or enable) a user; a disabled user's sessions and tokens stop working."""
        with self._change() as records:
            record = self._existing(records, name)
            before = record.user()
            record.disabled = disabled
            return _done(before, record, before_write)

    def set_role(self, name: str, role: str, *, before_write: Hook | None = None) -> User:
        check_role(role)
        with self._change() as records:
            record = self._existing(records, name)
            before = record.user()
            record.role = role
            return _done(before, record, before_write)

    def new_token(self, name: str, *, now: datetime, label: str = "",
                  before_write: Hook | None = None) -> tuple[User, str]:
        """Create an API token for ``name``; the token is returned here and never again."""
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._change() as records:
            record = self._existing(records, name)
            before = record.user()
            record.tokens.append(asdict(Token(token_id, hashlib.sha256(token.encode()).hexdigest(), _iso(now),
                                              label[:200])))
            return _done(before, record, before_write), token

    def revoke_token(self, name: str, token_id: str, *, before_write: Hook | None = None) -> User:
        with self._change() as records:
            record = self._existing(records, name)
            before = record.user()
            kept = [token for token in record.tokens if token["id"] != token_id]
            if len(kept) == len(record.tokens):
                raise UnknownUserError(f"user {name!r} has no token {token_id[:40]!r}")
            record.tokens = kept
            return _done(before, record, before_write)

    def _check_password(self, password: str) -> None:
        if len(password) < self.min_password_length:
            raise UserError(f"password too short: at least {self.min_password_length} characters")
        if len(password) > 1024:
            raise UserError("password too long: at most 1024 characters")

    @staticmethod
    def _existing(records: dict[str, _Record], name: str) -> _Record:
        if name not in records:
            raise UnknownUserError(f"no user {name[:80]!r}")
        return records[name]

    def _rehash(self, name: str, password: str) -> None:
        with self._change() as records:
            if name in records:
                records[name].password_hash = PASSWORD_HASHER.hash(password)

    @contextmanager
    def _change(self) -> Iterator[dict[str, _Record]]:
        """Lock, re-read, let the caller change the records, write them back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._thread_lock:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._cache = None
                records = {name: _Record(**asdict(record)) for name, record in self._load().items()}
                yield records
                self._write(records)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _write(self, records: dict[str, _Record]) -> None:
        payload = {"version": 1, "users": [asdict(record) for _, record in sorted(records.items())]}
        handle, tmp = tempfile.mkstemp(prefix=".users.", dir=self.path.parent)
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out, indent=1, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._cache = None
