"""Sessions and the login limiter: pure logic, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.api.sessions import LoginLimiter, SessionStore

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


def test_session_ids_are_random_and_stored_hashed() -> None:
    store = SessionStore(ttl=timedelta(hours=8), idle=timedelta(minutes=30))
    first, session = store.create("ann", T0)
    second, _ = store.create("ann", T0)
    assert first != second and len(first) >= 43
    assert first not in repr(store._sessions)  # only hashes are kept
    assert store.get(first, T0) is session and session.csrf_token
    assert store.get("forged", T0) is None


def test_idle_and_absolute_expiry() -> None:
    store = SessionStore(ttl=timedelta(hours=8), idle=timedelta(minutes=30))
    sid, _ = store.create("ann", T0)
    assert store.get(sid, T0 + timedelta(minutes=29)) is not None
    assert store.get(sid, T0 + timedelta(minutes=59, seconds=59)) is None  # 30:59 idle
    sid, _ = store.create("ann", T0)
    moment = T0
    while moment < T0 + timedelta(hours=8) - timedelta(minutes=10):
        moment += timedelta(minutes=10)
        assert store.get(sid, moment) is not None
    assert store.get(sid, T0 + timedelta(hours=8)) is None


def test_end_user_ends_every_session_of_that_user() -> None:
    store = SessionStore(ttl=timedelta(hours=8), idle=timedelta(minutes=30))
    a1, _ = store.create("ann", T0)
    a2, _ = store.create("ann", T0)
    b, _ = store.create("bob", T0)
    assert store.end_user("ann") == 2
    assert store.get(a1, T0) is None and store.get(a2, T0) is None and store.get(b, T0) is not None


def test_limiter_per_user_and_per_address() -> None:
    limiter = LoginLimiter(max_failures=5, window=timedelta(minutes=15))
    for i in range(5):
        assert limiter.retry_after("ann", "10.0.0.1", T0 + timedelta(minutes=i)) == 0
        limiter.failed("ann", "10.0.0.1", T0 + timedelta(minutes=i))
    now = T0 + timedelta(minutes=5)
    assert limiter.retry_after("ann", "10.0.0.9", now) == 600  # the user is blocked from anywhere
    assert limiter.retry_after("bob", "10.0.0.1", now) == 600  # the address is blocked for anyone
    assert limiter.retry_after("bob", "10.0.0.9", now) == 0
    assert limiter.retry_after("ann", "10.0.0.9", T0 + timedelta(minutes=15)) == 0  # oldest aged out
    limiter.succeeded("ann")
    assert limiter.retry_after("ann", "10.0.0.9", now) == 0
    assert limiter.retry_after("carol", "10.0.0.1", now) == 600  # success clears the user, not the address


def test_limiter_memory_is_bounded_under_a_spray() -> None:
    limiter = LoginLimiter(max_failures=5, window=timedelta(minutes=1))
    for i in range(100_010):
        limiter.failed(f"user{i}", f"10.{i % 250}.0.1", T0 + timedelta(seconds=i))
    assert len(limiter._failures) < 100_300
