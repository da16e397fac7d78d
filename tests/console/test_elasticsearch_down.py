"""Elasticsearch goes away and comes back: the console says so, answers 503 with a reason, recovers.

The console talks to the real test Elasticsearch through a small TCP relay on a loopback port
that the test opens and closes: closed, Elasticsearch is unreachable for the console exactly
as when it is down (connection refused); open again, it is back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from alerts.api.app import create_app
from alerts.settings import Settings
from tests.console.conftest import bearer, free_port, make_user, settings_for


class Relay:
    """Forwards 127.0.0.1:port to target while open; closing also cuts live connections."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone leaves it listening.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay(elasticsearch_url: str) -> Iterator[Relay]:
    target = urlsplit(elasticsearch_url)
    relay = Relay(free_port(), (target.hostname or "127.0.0.1", target.port or 9200))
    yield relay
    relay.close()


@pytest.fixture
def flaky(tmp_path, relay: Relay, elasticsearch_url: str) -> Iterator[tuple[TestClient, Settings, dict[str, str]]]:
    settings = settings_for(tmp_path / "data", f"http://127.0.0.1:{relay.port}", elasticsearch_check_s=0.2)
    settings = settings.model_copy(update={"elasticsearch": settings.elasticsearch.model_copy(
        update={"request_timeout_s": 3.0})})
    make_user(settings, "aud", "auditor")
    headers = bearer(settings, "aud")
    with TestClient(create_app(settings)) as client:
        yield client, settings, headers
    from elasticsearch import Elasticsearch

    Elasticsearch(elasticsearch_url).indices.delete(index=settings.console.audit_index, ignore_unavailable=True)


def test_down_then_back(flaky: tuple[TestClient, Settings, dict[str, str]], relay: Relay) -> None:
    client, _settings, headers = flaky
    # Down from the start.
    status = client.get("/api/status", headers=headers).json()
    assert status["elasticsearch"] == "down" and "unreachable" in status["reason"]
    answer = client.get("/api/audit", headers=headers)
    assert answer.status_code == 503
    assert answer.json()["reason"] == "elasticsearch_unavailable" and answer.headers["Retry-After"]
    page = client.get("/audit", headers={**headers, "Accept": "text/html"})
    assert page.status_code == 503 and "Elasticsearch is unavailable" in page.text
    home = client.get("/", headers={**headers, "Accept": "text/html"})
    assert home.status_code == 200  # the console itself still works, and says why it cannot do more
    assert '<div id="es-banner" class="banner banner-error" role="alert">' in home.text
    # Back.
    relay.open()
    time.sleep(0.3)
    assert client.get("/api/status", headers=headers).json() == {"elasticsearch": "up", "reason": None}
    assert client.get("/api/audit", headers=headers).status_code == 200
    home = client.get("/", headers={**headers, "Accept": "text/html"})
    assert 'id="es-banner" class="banner banner-error" role="alert" hidden' in home.text
    # Down again mid-session: a request fails, the banner is back at once.
    relay.close()
    assert client.get("/api/audit", headers=headers).status_code == 503
    assert client.get("/api/status", headers=headers).json()["elasticsearch"] == "down"


def test_logins_while_down_join_the_chain_when_it_is_back(flaky: tuple[TestClient, Settings, dict[str, str]],
                                                          relay: Relay) -> None:
    client, settings, _headers = flaky
    make_user(settings, "ann", "analyst")
    trail = client.app.state.console.audit  # type: ignore[attr-defined]
    for password in ("wrong password!", "correct horse battery staple"):
        client.get("/login")
        answer = client.post("/login", data={"username": "ann", "password": password,
                                             "login_token": client.cookies.get("socflow_login")},
                             follow_redirects=False)
        assert answer.status_code in (401, 303)
    assert answer.status_code == 303  # logged in while Elasticsearch is down
    assert trail.pending() == 2
    relay.open()
    time.sleep(0.3)
    trail.append(actor="ann", action="test_after", target="x", now=client.app.state.console.clock())  # type: ignore[attr-defined]
    assert trail.pending() == 0
    assert [r["action"] for _, r in trail.records()] == ["login_failure", "login_success", "test_after"]
    assert trail.verify().ok


def test_a_change_whose_audit_fails_is_an_error(flaky: tuple[TestClient, Settings, dict[str, str]]) -> None:
    client, settings, _ = flaky
    make_user(settings, "root", "admin")
    admin = bearer(settings, "root")
    answer = client.post("/api/users", headers=admin, json={"name": "ann", "role": "analyst",
                                                             "password": "a long enough password"})
    assert answer.status_code == 503
    assert answer.json()["reason"] == "audit_unavailable"
    assert "audit trail cannot be written" in answer.json()["detail"]
    assert settings.console_dir.joinpath("users.json").read_text().count('"name"') == 2  # no ann: nothing changed
