"""The end of ``socflow demo``: a console settings file over the demo's indices and an analyst
whose login works, with the alerts waiting in the queue (real Elasticsearch, real app)."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from alerts.api.app import create_app
from alerts.commands.demo_console import DEMO_USER, invitation, prepare_console
from alerts.settings import load_settings
from alerts.users.store import UserStore
from tests.console.conftest import bearer
from tests.triage.alertdata import drop, index_alerts

pytestmark = pytest.mark.integration


def test_demo_console_settings_and_login(tmp_path: Path, elasticsearch_url: str) -> None:
    indexed = index_alerts(tmp_path, elasticsearch_url, 4)
    client = Elasticsearch(elasticsearch_url)
    names = {"audit": f"{indexed.prefix}_audit", "incidents": f"{indexed.prefix}_incidents",
             "filters": f"{indexed.prefix}_filters", "events": f"{indexed.prefix}_events"}
    try:
        settings = load_settings(data_dir=tmp_path / "demo")
        path, password = prepare_console(settings, client, es_url=elasticsearch_url, alerts_prefix=indexed.prefix,
                                         indices=names)
        lines = invitation(path, password, settings)
        assert f"socflow --config {path} serve" in lines[1] and f"{DEMO_USER} / {password}" in lines[2]
        console_settings = load_settings(path)
        assert console_settings.elasticsearch.index_prefix == indexed.prefix
        assert console_settings.data_dir == tmp_path / "demo"
        assert console_settings.job.rule_dirs == load_settings().job.rule_dirs  # the rest of config/socflow.yaml
        store = UserStore(console_settings.console_dir / "users.json")
        assert store.authenticate(DEMO_USER, password) is not None
        client.indices.refresh(index=names["audit"])
        records = client.search(index=names["audit"])["hits"]["hits"]
        assert [(r["_source"]["actor"], r["_source"]["action"]) for r in records] == [("socflow-demo", "user_add")]
        with TestClient(create_app(console_settings)) as api:
            headers = {**bearer(console_settings, DEMO_USER), "Accept": "application/json"}
            queue = api.get("/api/alerts", headers=headers)
            assert queue.status_code == 200 and queue.json()["total"] == 5
        # A second demo run starts afresh: same indices, a new password, a fresh audit chain.
        again_path, again = prepare_console(settings, client, es_url=elasticsearch_url,  # as with --keep
                                            alerts_prefix=indexed.prefix, indices=names)
        assert again != password and again_path == path
        assert UserStore(console_settings.console_dir / "users.json").authenticate(DEMO_USER, again) is not None
        assert create_app(console_settings).state.console.audit.verify().ok
    finally:
        drop(indexed)
        for name in names.values():
            client.indices.delete(index=name, ignore_unavailable=True)


def test_the_demo_ends_with_the_invitation(tmp_path: Path, elasticsearch_url: str, stack_settings: object) -> None:
    """``socflow demo``'s last step as its handler runs it (the test Elasticsearch plays the
    developer's): the command and a login that works are printed."""
    from rich.console import Console

    from alerts.commands.demo import _console_invitation
    from alerts.commands.demo_console import DEMO_INDICES

    settings = load_settings(data_dir=tmp_path / "demo").model_copy(update={"stack": stack_settings})
    console = Console(record=True, width=200)
    client = Elasticsearch(elasticsearch_url)
    try:
        _console_invitation(settings, console)
        text = console.export_text()
        assert f"socflow --config {tmp_path / 'demo' / 'console.yaml'} serve" in text
        password = text.split(f"{DEMO_USER} / ")[1].split(" ")[0]
        store = UserStore(tmp_path / "demo" / "console" / "users.json")
        assert store.authenticate(DEMO_USER, password) is not None
        assert load_settings(tmp_path / "demo" / "console.yaml").elasticsearch.index_prefix == "socflow-demo-alerts"
    finally:
        for key in ("audit", "incidents", "filters"):
            client.indices.delete(index=DEMO_INDICES[key], ignore_unavailable=True)
