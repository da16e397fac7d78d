"""'Suppress alerts like this' lands where the job reads it: the next replay of the demo's
attack drops the suppressed alerts (replay runs the job's own suppression stage)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import helpers

from alerts.commands.replay import alert_documents, replay
from alerts.indexer import connect, install_template
from alerts.scenario import SCANNER, generate
from alerts.settings import load_settings
from alerts.triage.errors import TriageError
from alerts.triage.store import TriageStore
from alerts.triage.suppressions import SuppressionFile
from detectors.dedup import Suppressor
from tests.triage.alertdata import RecordingAudit

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SQLI = "SQL Injection Attempt Against a Web Application"


def test_suppression_from_the_console_applies_in_the_next_replay(tmp_path: Path, elasticsearch_url: str) -> None:
    prefix = f"t-triage-supp-{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=tmp_path / "data", elasticsearch={"url": elasticsearch_url,
                                                                         "index_prefix": prefix})
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    inputs = [files.mail, files.portal, files.windows]
    first = replay([REPO / "rules"], inputs, settings)
    sqli = [d for d in first.detections if d.rule.title == SQLI]
    assert sqli, "the demo's attack has SQL injection alerts"

    client = connect(settings.elasticsearch)
    install_template(client, prefix)
    try:
        helpers.bulk(client, ({"_index": doc.pop("_index"), "_id": doc.pop("_id"), "_source": doc}
                              for doc in alert_documents(first.detections, prefix)), refresh="wait_for")
        audit = RecordingAudit()
        store = TriageStore(client, alerts=prefix, incidents=f"{prefix}_incidents", filters=f"{prefix}_filters",
                            audit=audit, refresh=True)
        paths = settings.suppression_paths
        console_file = SuppressionFile(paths[-1], others=paths[:-1])
        alert_id = sqli[0].id
        version = store.get(alert_id).version
        with pytest.raises(TriageError, match="future"):
            store.suppress(alert_id, console_file, fields=["source.ip"], reason="pentest", until=NOW, actor="root",
                           now=NOW, expected=version)
        with pytest.raises(TriageError, match=r"no value for user\.name"):
            store.suppress(alert_id, console_file, fields=["user.name"], reason="pentest",
                           until=NOW + timedelta(days=30), actor="root", now=NOW, expected=version)
        entry, record = store.suppress(alert_id, console_file, fields=["source.ip"],
                                       reason="Scanner of the agreed pentest (SOC-2026-400)",
                                       until=NOW + timedelta(days=30), actor="root", now=NOW, expected=version)
        assert entry["rule"] == sqli[0].rule.id and entry["fields"] == {"source.ip": SCANNER}
        assert record.source["socflow"]["triage"]["suppression"] == entry["name"]
        assert [r["action"] for r in audit.records] == ["suppression.create", "alert.suppress"]
        assert audit.records[0]["after"]["reason"] == "Scanner of the agreed pentest (SOC-2026-400)"
        # The job's loader reads both files; the reviewed file is untouched.
        assert [s.name for s in Suppressor.load_all(paths).suppressions] == ["portal-pentest-2026q4", entry["name"]]

        second = replay([REPO / "rules"], inputs, settings)
        assert not [d for d in second.detections if d.rule.title == SQLI]
        assert second.suppressed[entry["name"]] >= len(sqli)
        others = {d.rule.title for d in first.detections} - {SQLI}
        assert {d.rule.title for d in second.detections} == others
    finally:
        for name in client.indices.get(index=f"{prefix}*", allow_no_indices=True):
            client.indices.delete(index=name)
        client.indices.delete_index_template(name=prefix)
