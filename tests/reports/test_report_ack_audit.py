"""Time to acknowledge in the report agrees with the audit trail.

Alerts are triaged through the real service (``TriageStore`` with the hash-chained
``AuditTrail``, real Elasticsearch): acknowledged, closed or escalated first, reopened and
acknowledged again, only assigned, never touched. The first response of each alert is then
derived from the audit records alone (its first record leaving ``open``) and compared with what
triage stored on the alert and with the report's figures (median and p90, all, by level and by
security level; the backlog's never-acknowledged count).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from alerts import yeardata
from alerts.audit.trail import AuditTrail
from alerts.indexer import install_template
from alerts.reports.period import named_period
from alerts.reports.sections.response import ACK_RESOLUTION_S, percentile
from alerts.reports.service import Request, make_report
from alerts.triage.store import TriageStore
from ingest.assets import AssetInventory
from ingest.normalize import resolve_config_path
from ingest.schema import format_timestamp
from tests.reports.conftest import RULES_DIR, drop_indices, settings_for

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
REPORT_NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
COUNT = 28
LEVELS = ("critical", "high", "medium", "low", "informational")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def triaged(elasticsearch_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prefix = f"t-reports-ack-{uuid.uuid4().hex[:8]}"
    settings = settings_for(elasticsearch_url, prefix, tmp_path_factory.mktemp("reports-ack"))
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    alias = settings.elasticsearch.index_prefix
    install_template(client, alias)
    nodes = list(AssetInventory.load(resolve_config_path(settings.collector.assets_path)).nodes)
    rng = random.Random(7)
    alerts: dict[str, dict[str, Any]] = {}
    for number in range(COUNT):
        moment = START + timedelta(minutes=37 * number * 11)
        alert_id = f"ack-{number:03d}"
        alerts[alert_id] = {
            "@timestamp": format_timestamp(moment), "event": {"kind": "alert", "id": alert_id},
            "rule": {"id": f"r-{number % 5}", "name": f"Rule {number % 5}", "level": LEVELS[number % 5]},
            "socflow": {"node": rng.choice(nodes).as_event_field(),
                        "alert": {"status": "open", "first_seen": format_timestamp(moment), "count": 1}}}
    yeardata.bulk_load(client, iter((f"{alias}-2026.11", key, doc) for key, doc in alerts.items()))
    client.indices.refresh(index=f"{alias}-*")
    trail = AuditTrail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
    store = TriageStore(client, alerts=alias, incidents=settings.reports.incidents_index,
                        filters=f"{prefix}-filters", audit=trail)
    store.install()
    for number, (alert_id, doc) in enumerate(alerts.items()):
        at = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        # Seconds to days: most within hours, a few days late, one a second after it was raised.
        first = at + timedelta(seconds=1 if number == 3 else rng.choice((45, 600, 3_000, 7_777, 20_000, 200_000)))
        later = first + timedelta(hours=rng.choice((1, 5, 30)))
        match number % 7:
            case 0:
                pass  # never touched: backlog
            case 1:
                store.set_status(alert_id, "acknowledged", actor="lan", now=first)
                store.set_status(alert_id, "closed", actor="binh", now=later, verdict="benign", reason="ok")
            case 2:
                store.set_status(alert_id, "closed", actor="lan", now=first, verdict="false_positive", reason="noise")
            case 3:
                store.set_status(alert_id, "investigating", actor="lan", now=first)
            case 4:
                store.create_incident(f"INC-{number:03d}", {alert_id: None}, title="escalated", severity=None,
                                      actor="lan", now=first)
            case 5:
                store.set_status(alert_id, "acknowledged", actor="lan", now=first)
                store.set_status(alert_id, "closed", actor="lan", now=later, verdict="benign", reason="ok")
                store.set_status(alert_id, "open", actor="binh", now=later + timedelta(minutes=5))
                store.set_status(alert_id, "acknowledged", actor="binh", now=later + timedelta(hours=2))
            case _:
                store.assign(alert_id, "binh", actor="lan", now=first)  # not a response: still never acknowledged
    client.indices.refresh(index=f"{prefix}-*")
    request = Request("operations", named_period(settings.reports, "monthly:2026-11"), None, "en")
    report = make_report(settings, client, request, now=REPORT_NOW, rules_dir=RULES_DIR)
    audit = [hit["_source"] for hit in client.search(index=settings.reports.audit_index, size=1000,
                                                     sort=[{"seq": "asc"}])["hits"]["hits"]]
    stored = {hit["_id"]: hit["_source"] for hit in client.search(index=alias, size=1000)["hits"]["hits"]}
    try:
        yield {"alerts": alerts, "audit": audit, "stored": stored, "report": report}
    finally:
        drop_indices(client, prefix)
        client.options(ignore_status=404).indices.delete_index_template(name=alias)
        client.close()


def first_responses(audit: list[dict[str, Any]]) -> dict[str, str]:
    """Alert id -> time of its first audit record taking it out of ``open``."""
    found: dict[str, str] = {}
    for record in audit:
        target, before, after = record["target"], record.get("before") or {}, record.get("after") or {}
        if target.startswith("alert:") and before.get("status") == "open" and after.get("status") != "open":
            found.setdefault(target.removeprefix("alert:"), record["@timestamp"])
    return found


def test_triage_stores_the_first_response_the_audit_trail_records(triaged: dict[str, Any]) -> None:
    responses = first_responses(triaged["audit"])
    assert len(responses) == sum(1 for n in range(COUNT) if n % 7 in (1, 2, 3, 4, 5))
    for alert_id, doc in triaged["alerts"].items():
        stamp = (triaged["stored"][alert_id]["socflow"].get("triage") or {})
        if alert_id not in responses:
            assert stamp.get("acknowledged_at") is None and stamp.get("ack_seconds") is None
            continue
        assert _epoch(stamp["acknowledged_at"]) == _epoch(responses[alert_id])
        assert stamp["ack_seconds"] == int(_epoch(responses[alert_id]) - _epoch(doc["@timestamp"]))


def test_report_time_to_acknowledge_agrees_with_the_audit_trail(triaged: dict[str, Any]) -> None:
    responses = first_responses(triaged["audit"])
    groups: dict[str, list[float]] = defaultdict(list)
    for alert_id, at in responses.items():
        doc = triaged["alerts"][alert_id]
        seconds = int(_epoch(at) - _epoch(doc["@timestamp"]))
        minute_ms = seconds // ACK_RESOLUTION_S * ACK_RESOLUTION_S * 1000
        for group in ("all", f"level:{doc['rule']['level']}", f"security:{doc['socflow']['node']['security_level']}"):
            groups[group].append(minute_ms)

    def expected(values: list[float]) -> dict[str, Any]:
        return {"acknowledged": len(values),
                "median_h": round(percentile([(v, 1) for v in values], 0.5) / 3_600_000, 2),  # type: ignore[operator]
                "p90_h": round(percentile([(v, 1) for v in values], 0.9) / 3_600_000, 2)}  # type: ignore[operator]

    section = triaged["report"]["sections"]["response"]
    figures = section["time_to_acknowledge"]
    assert figures["status"] == "ok" and figures["resolution"] == "1m"
    assert figures["all"] == expected(groups["all"])
    assert figures["by_level"] == {key.split(":")[1]: expected(values) for key, values in sorted(groups.items())
                                   if key.startswith("level:")}
    assert figures["by_security_level"] == {key.split(":")[1]: expected(values)
                                            for key, values in sorted(groups.items()) if key.startswith("security:")}
    assert sum(row["alerts"] for row in figures["distribution_h"]) == len(responses)
    never = [alert_id for alert_id in triaged["alerts"] if alert_id not in responses]
    assert section["alerts"]["backlog"]["never_acknowledged"] == len(never) > 0
    assert any("backlog" in note for note in figures["notes"])


def test_install_template_maps_the_fields_on_an_index_made_before(elasticsearch_url: str) -> None:
    """An alert index made before the template knew the fields gets them as dates and numbers
    (not dynamic keywords: date detection is off), so the current month aggregates them too."""
    alias = f"t-reports-ack-old-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    try:
        client.indices.create(index=f"{alias}-2026.11", mappings={"dynamic": True, "date_detection": False})
        install_template(client, alias)
        mapping = client.indices.get_mapping(index=f"{alias}-2026.11")[f"{alias}-2026.11"]["mappings"]
        triage = mapping["properties"]["socflow"]["properties"]["triage"]["properties"]
        assert (triage["acknowledged_at"]["type"], triage["ack_seconds"]["type"]) == ("date", "long")
    finally:
        client.options(ignore_status=404).indices.delete(index=f"{alias}-2026.11")
        client.options(ignore_status=404).indices.delete_index_template(name=alias)
        client.close()
