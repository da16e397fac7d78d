"""``socflow users`` and ``socflow serve``'s listening rules, as an operator runs them."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.api.app import create_app
from alerts.audit.trail import AuditTrail
from alerts.cli import main
from alerts.commands.serve import ConsoleError, check_listen
from alerts.indexer import connect
from alerts.settings import ConsoleSettings, Settings
from alerts.users.store import UserStore


@pytest.fixture
def run(console_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", console_settings.elasticsearch.url)
    monkeypatch.setenv("SOCFLOW_CONSOLE__AUDIT_INDEX", console_settings.console.audit_index)

    def socflow(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--data-dir", str(console_settings.data_dir), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return socflow


def _trail(settings: Settings) -> list[dict]:
    trail = AuditTrail(connect(settings.elasticsearch), settings.console.audit_index,
                       settings.audit_dir / "chain-head")
    return [record for _, record in trail.records()]


def test_users_lifecycle(run, console_settings: Settings) -> None:
    code, out, _ = run("users", "add", "ann", "--role", "analyst", stdin="a long enough password\n")
    assert code == 0 and "added ann (analyst)" in out
    path = console_settings.console_dir / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert "a long enough password" not in stored and "$argon2id$" in stored
    assert run("users", "add", "ann", "--role", "admin", stdin="a long enough password\n")[0] == 2  # exists
    assert run("users", "add", "bob", "--role", "analyst", stdin="short\n")[0] == 2
    code, out, _ = run("users", "list")
    assert "ann" in out and "analyst" in out and "active" in out and "bob" not in out

    code, token, err = run("users", "token", "ann", "--label", "nightly report")
    assert code == 0 and token.startswith("sfc_") and "shown once" in err
    token = token.strip()
    assert token not in path.read_text()
    with TestClient(create_app(console_settings)) as client:
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == "ann"
        assert run("users", "passwd", "ann", stdin="another long password\n")[0] == 0
        assert UserStore(path).authenticate("ann", "another long password") is not None
        assert run("users", "disable", "ann")[0] == 0
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert run("users", "enable", "ann")[0] == 0
        token_id = token.split("_")[1]
        assert run("users", "token", "ann", "--revoke", token_id)[0] == 0
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert run("users", "role", "ann", "--role", "auditor")[0] == 0

    records = _trail(console_settings)
    assert [r["action"] for r in records] == ["user_add", "user_token_add", "user_password", "user_disable",
                                              "user_enable", "user_token_revoke", "user_role"]
    assert all(r["actor"].startswith("cli:") and r["target"] == "user:ann" for r in records)
    assert records[-1]["before"]["role"] == "analyst" and records[-1]["after"]["role"] == "auditor"
    assert "argon2" not in json.dumps(records) and token not in json.dumps(records)
    assert run("audit", "verify")[0] == 0


def test_password_is_never_an_argument(run) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("users", "add", "ann", "--role", "analyst", "--password", "a long enough password")
    assert exit_info.value.code == 2


def test_unknown_user(run) -> None:
    code, _, err = run("users", "disable", "ghost")
    assert code == 2 and "no user 'ghost'" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5"])
def test_plain_http_on_loopback(host: str) -> None:
    check_listen(ConsoleSettings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "console.example.gov.vn"])
def test_plain_http_elsewhere_is_refused(host: str) -> None:
    with pytest.raises(ConsoleError, match="refusing plain HTTP"):
        check_listen(ConsoleSettings(host=host))


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConsoleError, match="go together"):
        check_listen(ConsoleSettings(host="0.0.0.0", tls_cert=tmp_path / "c.pem"))
    with pytest.raises(ConsoleError, match="not found"):
        check_listen(ConsoleSettings(host="0.0.0.0", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    check_listen(ConsoleSettings(host="0.0.0.0", tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))


def test_serve_refuses_plain_http_on_the_network(run) -> None:
    code, _, err = run("serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "refusing plain HTTP on 0.0.0.0" in err
