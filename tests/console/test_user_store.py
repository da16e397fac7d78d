"""The users file: Argon2id hashes, tokens stored hashed, no change lost between writers."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.users.store import UnknownUserError, UserError, UserExistsError, UserStore

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def test_add_authenticate_and_what_is_stored(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    store.add("ann", "analyst", "a long enough password", now=NOW)
    assert store.authenticate("ann", "a long enough password") is not None
    assert store.authenticate("ann", "a long enough passwore") is None
    assert store.authenticate("nobody", "a long enough password") is None
    data = json.loads((tmp_path / "users.json").read_text())
    assert data["users"][0]["password_hash"].startswith("$argon2id$")
    with pytest.raises(UserExistsError):
        store.add("ann", "analyst", "a long enough password", now=NOW)
    with pytest.raises(UserError, match="invalid user name"):
        store.add("<script>", "analyst", "a long enough password", now=NOW)
    with pytest.raises(UserError, match="invalid role"):
        store.add("bob", "root", "a long enough password", now=NOW)
    with pytest.raises(UnknownUserError):
        store.set_disabled("ghost", True)


def test_tokens_are_stored_as_hashes_and_revocable(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    store.add("ann", "analyst", "a long enough password", now=NOW)
    user, token = store.new_token("ann", now=NOW, label="cron")
    assert token not in (tmp_path / "users.json").read_text()
    assert store.authenticate_token(token) == user
    assert store.authenticate_token(token[:-1] + ("x" if token[-1] != "x" else "y")) is None
    assert store.authenticate_token("not a token") is None
    store.set_disabled("ann", True)
    assert store.authenticate_token(token) is None
    store.set_disabled("ann", False)
    store.revoke_token("ann", user.tokens[0].id)
    assert store.authenticate_token(token) is None


def test_a_failing_hook_leaves_the_file_unchanged(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    store.add("ann", "analyst", "a long enough password", now=NOW)
    before = (tmp_path / "users.json").read_bytes()

    def refuse(_before: object, _after: object) -> None:
        raise RuntimeError("audit down")

    with pytest.raises(RuntimeError):
        store.set_role("ann", "admin", before_write=refuse)
    assert (tmp_path / "users.json").read_bytes() == before
    assert store.get("ann").role == "analyst"  # type: ignore[union-attr]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    # Two store objects stand for two processes (each with its own cache); the flock orders them.
    stores = [UserStore(tmp_path / "users.json"), UserStore(tmp_path / "users.json")]

    def add(which: int) -> None:
        for i in range(8):
            stores[which].add(f"u{which}-{i}", "analyst", "a long enough password", now=NOW)

    threads = [threading.Thread(target=add, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores[0].list()) == len(stores[1].list()) == 16
