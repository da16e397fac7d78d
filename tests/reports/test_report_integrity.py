"""The integrity section over the real hash-chained audit trail: the generated year's chain
verifies ("ok"); an edited record makes it "failed" naming the first bad record; the rule
inventory's default is the project's rules/ (the golden files use a fixed directory)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.audit.trail import AuditTrail
from alerts.reports.period import named_period
from alerts.reports.service import Request, make_report
from tests.reports.conftest import NOW, Loaded, drop_indices, settings_for

pytestmark = pytest.mark.integration
PROJECT_RULES = Path(__file__).resolve().parents[2] / "rules"


def test_year_chain_verifies_and_rules_default_to_the_project(loaded: Loaded) -> None:
    period = named_period(loaded.settings.reports, "monthly:2026-11")
    report = make_report(loaded.settings, loaded.client, Request("periodic", period, None, "en"), now=NOW)
    chain = report["sections"]["integrity"]["audit_chain"]
    assert chain == {"status": "ok", "records": len(loaded.documents["audit"]),
                     "last_seq": len(loaded.documents["audit"]), "problem": None}
    expected = sum(1 for p in PROJECT_RULES.rglob("*.yml") if not p.name.endswith(".tests.yml"))
    assert report["sections"]["rules"]["project_rules"] == expected > 3


def test_edited_record_makes_integrity_fail_at_that_record(elasticsearch_url: str, tmp_path: Path) -> None:
    prefix = f"t-reports-tamper-{uuid.uuid4().hex[:8]}"
    settings = settings_for(elasticsearch_url, prefix, tmp_path)
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    try:
        trail = AuditTrail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
        for number in range(3):
            trail.append(actor="socflow-cron", action="retention_delete_by_query",
                         target="index:socflow-alerts-2025.01",
                         after={"outcome": "success", "index": "socflow-alerts-2025.01", "documents": 10 + number,
                                "dry_run": False}, now=NOW - timedelta(days=30 - number))
        # Someone lowers the count of deleted alerts in record 2, leaving its hash as it was.
        client.update(index=settings.reports.audit_index, id="2", doc={"after": {"documents": 1}}, refresh=True)
        period = named_period(settings.reports, "monthly:2026-11")
        report = make_report(settings, client, Request("periodic", period, None, "en"), now=NOW)
        section = report["sections"]["integrity"]
        assert section["status"] == "ok"  # the section itself was made: its verdict is the finding
        chain = section["audit_chain"]
        assert chain["status"] == "failed" and chain["records"] == 1 and chain["last_seq"] == 1
        assert chain["problem"].startswith("record seq=2: ")
    finally:
        drop_indices(client, prefix)
        client.close()
