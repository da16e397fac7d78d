"""Fixtures of the console's tests, for every console test module (console-core and console-triage).

- ``console_settings``: settings with a private data dir and a unique audit index on the real
  test Elasticsearch (deleted afterwards); ``make_user(settings, name, role)`` adds a user.
- ``console_app`` / ``client``: the FastAPI app and a TestClient on it (no network).
- ``bearer(settings, name)``: ``Authorization`` headers of a new API token of ``name``.
- ``live_console``: the same app served by uvicorn in a thread on a free loopback port
  (``.url``, ``.settings``, ``.app``).
- ``browser`` (session) and ``page`` (per test): Debian's Chromium (``/usr/bin/chromium``)
  driven by Playwright; ``screenshot_dir`` is ``tests/console/screenshots/`` (gitignored).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi import FastAPI

from alerts.api.app import create_app
from alerts.settings import Settings, load_settings
from alerts.users.store import User, UserStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def settings_for(data_dir: Path, elasticsearch_url: str, **console: Any) -> Settings:
    return load_settings(data_dir=data_dir, elasticsearch={"url": elasticsearch_url},
                         console={"audit_index": f"t-console-audit-{uuid.uuid4().hex[:12]}", **console})


def make_user(settings: Settings, name: str, role: str, password: str = PASSWORD) -> User:
    """Add a user straight to the store (no audit record: test set-up, not a user change)."""
    store = UserStore(settings.console_dir / "users.json", min_password_length=settings.console.min_password_length)
    return store.add(name, role, password, now=datetime.now(UTC))


def bearer(settings: Settings, name: str) -> dict[str, str]:
    store = UserStore(settings.console_dir / "users.json")
    _, token = store.new_token(name, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with 1 pass over 1 MiB in tests: the same code path, a fraction of the cost."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("alerts.users.store.PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                                             parallelism=1))


@pytest.fixture
def console_settings(tmp_path: Path, elasticsearch_url: str) -> Iterator[Settings]:
    settings = settings_for(tmp_path / "data", elasticsearch_url)
    yield settings
    Elasticsearch(elasticsearch_url).indices.delete(index=settings.console.audit_index, ignore_unavailable=True)


@pytest.fixture
def console_app(console_settings: Settings) -> FastAPI:
    return create_app(console_settings)


@pytest.fixture
def client(console_app: FastAPI) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(console_app) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveConsole:
    url: str
    settings: Settings
    app: FastAPI


def serve_in_thread(app: FastAPI, port: int) -> Callable[[], None]:
    """Run ``app`` with uvicorn on 127.0.0.1:``port`` in a daemon thread; returns its stop function."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"console-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the console did not start on port {port}")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop


@pytest.fixture
def live_console(console_settings: Settings) -> Iterator[LiveConsole]:
    app = create_app(console_settings)
    port = free_port()
    stop = serve_in_thread(app, port)
    try:
        yield LiveConsole(f"http://127.0.0.1:{port}", console_settings, app)
    finally:
        stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium; deploy/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []

    def on_console(message: Any) -> None:
        # A refused login answers 401/429 on purpose; the browser logs those responses as errors.
        if message.type == "error" and not any(f"status of {code}" in message.text for code in (401, 429)):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    # Tests assert this stays empty: no CSP violation, no script error, no missing file.
    page.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
