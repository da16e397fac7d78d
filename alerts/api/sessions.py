"""Server-side sessions and login throttling, kept in the console process's memory.

A session id is 256 random bits in a cookie; the server keeps, per session, the user name, the
CSRF token, the login time and the last request time. A session ends ``ttl`` after login or
``idle`` after its last request, on logout, or when the user is disabled (checked on every
request). Sessions do not survive a restart of ``socflow serve``: everyone logs in again, which
is the safe failure. The server stores only the SHA-256 of each session id, so a memory dump
of the map gives no usable cookie.

``LoginLimiter`` counts failed logins per user name and per client address in a sliding window;
at ``max_failures`` further attempts are refused (429 with Retry-After) until the oldest
failure leaves the window, whether or not the password is right. Time is passed in.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class Session:
    user: str
    csrf_token: str
    created: datetime
    last_seen: datetime
    stamp: str = ""  # the user's password_changed at login: a new password ends older sessions


class SessionStore:
    """Live sessions by (hashed) id, with absolute and idle expiry."""

    def __init__(self, *, ttl: timedelta, idle: timedelta) -> None:
        self.ttl = ttl
        self.idle = idle
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, now: datetime, stamp: str = "") -> tuple[str, Session]:
        """A new session for ``user``: the cookie value (returned once) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), now, now, stamp)
        with self._lock:
            self._expire(now)
            self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str, now: datetime) -> Session | None:
        """The live session of ``session_id`` (touching it), or None when unknown or expired."""
        key = _key(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.created >= self.ttl or now - session.last_seen >= self.idle:
                del self._sessions[key]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(_key(session_id), None)

    def end_user(self, user: str) -> int:
        """End every session of ``user`` (password changed, user disabled); how many ended."""
        with self._lock:
            keys = [key for key, session in self._sessions.items() if session.user == user]
            for key in keys:
                del self._sessions[key]
        return len(keys)

    def _expire(self, now: datetime) -> None:
        stale = [key for key, s in self._sessions.items()
                 if now - s.created >= self.ttl or now - s.last_seen >= self.idle]
        for key in stale:
            del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


class LoginLimiter:
    """Sliding-window count of failed logins per user and per address."""

    def __init__(self, *, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def retry_after(self, user: str, address: str, now: datetime) -> int:
        """Seconds until a login for ``user`` from ``address`` may be tried; 0 = now."""
        with self._lock:
            waits = [self._wait(key, now) for key in (f"user:{user}", f"addr:{address}")]
        return max(waits)

    def failed(self, user: str, address: str, now: datetime) -> None:
        with self._lock:
            for key in (f"user:{user}", f"addr:{address}"):
                self._failures.setdefault(key, deque()).append(now)
                self._prune(key, now)
            if len(self._failures) > 100_000:  # a spray of names must not grow memory without bound
                for key in [k for k, v in self._failures.items() if not v or now - v[-1] >= self.window]:
                    del self._failures[key]

    def succeeded(self, user: str) -> None:
        """A right password clears the user's count (not the address's: one address, many names)."""
        with self._lock:
            self._failures.pop(f"user:{user}", None)

    def _prune(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(key, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def _wait(self, key: str, now: datetime) -> int:
        failures = self._prune(key, now)
        if len(failures) < self.max_failures:
            return 0
        # Refused until enough failures age out to fall below the limit.
        oldest_blocking = failures[len(failures) - self.max_failures]
        return max(1, int((oldest_blocking + self.window - now).total_seconds() + 0.999))
