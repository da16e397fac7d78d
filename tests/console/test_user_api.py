"""The admins' user API: each change answers the user without secrets and is an audit record."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from alerts.settings import Settings
from tests.console.conftest import bearer, make_user


def test_user_changes_through_the_api(client: TestClient, console_settings: Settings) -> None:
    make_user(console_settings, "root", "admin")
    admin = bearer(console_settings, "root")
    created = client.post("/api/users", headers=admin,
                          json={"name": "ann", "role": "analyst", "password": "a long enough password"})
    assert created.status_code == 201 and created.json()["role"] == "analyst"
    assert "password" not in json.dumps(created.json()).replace("password_changed", "")
    assert client.post("/api/users", headers=admin, json={"name": "ann", "role": "analyst",
                                                          "password": "a long enough password"}).status_code == 409
    assert client.post("/api/users", headers=admin, json={"name": "bob", "role": "analyst",
                                                          "password": "short"}).status_code == 400
    assert client.post("/api/users", headers=admin, json={"name": "bob", "role": "root",
                                                          "password": "a long enough password"}).status_code == 422
    token = client.post("/api/users/ann/tokens", headers=admin, json={"label": "script"}).json()
    ann = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/api/me", headers=ann).json()["role"] == "analyst"
    assert client.post("/api/users/ann/role", headers=admin, json={"role": "auditor"}).json()["role"] == "auditor"
    assert client.get("/api/me", headers=ann).json()["role"] == "auditor"  # roles are read per request
    assert client.post("/api/users/ann/disable", headers=admin).json()["disabled"] is True
    assert client.get("/api/me", headers=ann).status_code == 401
    assert client.post("/api/users/root/disable", headers=admin).status_code == 400  # not yourself
    assert client.post("/api/users/root/role", headers=admin, json={"role": "analyst"}).status_code == 400
    assert client.post("/api/users/ghost/enable", headers=admin).status_code == 404
    assert client.delete(f"/api/users/ann/tokens/{token['token_id']}", headers=admin).json()["tokens"] == []
    listed = client.get("/api/users", headers=admin).json()
    assert [u["name"] for u in listed] == ["ann", "root"]
    assert "argon2" not in json.dumps(listed)
    trail = client.app.state.console.audit  # type: ignore[attr-defined]
    records = [r for _, r in trail.records()]
    assert [r["action"] for r in records] == ["user_add", "user_token_add", "user_role", "user_disable",
                                              "user_token_revoke"]
    assert all(r["actor"] == "root" and r["source_ip"] == "testclient" for r in records)
    assert records[2]["before"]["role"] == "analyst" and records[2]["after"]["role"] == "auditor"
    assert records[1]["after"]["token_id"] == token["token_id"] and token["token"] not in json.dumps(records)
