"""The yearly report's figures against direct computations over the generated documents."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from alerts import yeardata
from alerts.reports.period import named_period
from alerts.reports.sections import response
from alerts.reports.sections.response import percentile
from alerts.reports.service import Request, make_report
from tests.reports.conftest import NOW, YEAR, Loaded

pytestmark = pytest.mark.integration
SLOT_S = 300


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def yearly(loaded: Loaded) -> dict[str, Any]:
    request = Request("periodic", named_period(loaded.settings.reports, "yearly:2026"), None, "en")
    return make_report(loaded.settings, loaded.client, request, now=NOW)


def test_monitoring_figures(loaded: Loaded, yearly: dict[str, Any]) -> None:
    alerts = [doc for _, _, doc in loaded.documents["alerts"]]
    monitoring = yearly["sections"]["monitoring"]
    assert monitoring["total"] == len(alerts) == YEAR.alerts
    levels = Counter(doc["rule"]["level"] for doc in alerts)
    assert monitoring["by_level"] == {level: levels.get(level, 0) for level in monitoring["by_level"]}
    agencies = Counter(doc["socflow"]["node"]["agency"] for doc in alerts)
    assert {row["key"]: row["alerts"] for row in monitoring["by_agency"]} == dict(agencies)
    assert monitoring["by_district"] == dict(Counter(doc["socflow"]["node"]["district"] for doc in alerts))
    assert sum(row["total"] for row in monitoring["over_time"]) == len(alerts)
    for rule in monitoring["noisy_rules"]:
        mine = [doc for doc in alerts if doc["rule"]["name"] == rule["rule"]]
        judged = [doc for doc in mine if (doc["socflow"].get("triage") or {}).get("verdict")]
        false = sum(1 for doc in judged if doc["socflow"]["triage"]["verdict"] == "false_positive")
        assert (rule["alerts"], rule["with_verdict"], rule["false_positive"]) == (len(mine), len(judged), false)


def test_response_figures(loaded: Loaded, yearly: dict[str, Any]) -> None:
    alerts = [doc for _, _, doc in loaded.documents["alerts"]]
    closed = [doc for doc in alerts if doc["socflow"]["alert"]["status"] == "closed"]
    # The report's method: times in 5-minute slots (Elasticsearch's fixed_interval buckets).
    durations = [((_epoch(doc["socflow"]["triage"]["closed_at"]) // SLOT_S) - (_epoch(doc["@timestamp"]) // SLOT_S))
                 * SLOT_S * 1000 for doc in closed]
    expected_median = round(percentile([(d, 1) for d in durations], 0.5) / 3_600_000, 2)  # type: ignore[operator]
    expected_p90 = round(percentile([(d, 1) for d in durations], 0.9) / 3_600_000, 2)  # type: ignore[operator]
    response = yearly["sections"]["response"]
    stats = response["alerts"]["time_to_close"]["all"]
    assert (stats["closed"], stats["median_h"], stats["p90_h"]) == (len(closed), expected_median, expected_p90)
    assert response["alerts"]["backlog"]["open"] == len(alerts) - len(closed)
    incidents = response["incidents"]
    assert incidents["total"] == YEAR.incidents
    assert incidents["reporting"]["overdue"] == 1 and incidents["reporting"]["late"] == 1
    states = {row["id"]: row["reporting"] for row in incidents["list"]}
    assert states["INC-OVERDUE"] == "overdue" and states["INC-LATE"] == "late"
    assert incidents["reporting"]["on_time"] == YEAR.incidents - 2


def test_time_to_acknowledge_figures(loaded: Loaded, yearly: dict[str, Any]) -> None:
    """Median and p90 of the first response, per level and security level, against the generated
    documents' own times (whole minutes, as the report counts them); never acknowledged: backlog."""
    alerts = [doc for _, _, doc in loaded.documents["alerts"]]
    groups: dict[str, list[float]] = {}
    for doc in alerts:
        triage = doc["socflow"].get("triage") or {}
        if "acknowledged_at" not in triage:
            continue
        seconds = _epoch(triage["acknowledged_at"]) - _epoch(doc["@timestamp"])
        assert seconds == triage["ack_seconds"] >= 0
        minute_ms = seconds // 60 * 60_000
        for key in ("all", f"level {doc['rule']['level']}", f"security {doc['socflow']['node']['security_level']}"):
            groups.setdefault(key, []).append(minute_ms)

    def expected(values: list[float]) -> dict[str, Any]:
        weighted = [(value, 1) for value in values]
        return {"acknowledged": len(values), "median_h": round(percentile(weighted, 0.5) / 3_600_000, 2),  # type: ignore[operator]
                "p90_h": round(percentile(weighted, 0.9) / 3_600_000, 2)}  # type: ignore[operator]

    figures = yearly["sections"]["response"]["time_to_acknowledge"]
    assert figures["all"] == expected(groups["all"])
    assert figures["by_level"] == {key[6:]: expected(v) for key, v in sorted(groups.items()) if key[:6] == "level "}
    assert figures["by_security_level"] == {key[9:]: expected(v) for key, v in sorted(groups.items())
                                            if key[:9] == "security "}
    # Most within hours, a tail of days (what the generated year is meant to show).
    assert figures["all"]["median_h"] < 2 < figures["all"]["p90_h"] < 24
    never = sum(1 for doc in alerts if doc["socflow"]["alert"]["status"] == "open"
                and "acknowledged_at" not in (doc["socflow"].get("triage") or {}))
    backlog = yearly["sections"]["response"]["alerts"]["backlog"]
    assert backlog["never_acknowledged"] == never < backlog["open"]
    assert sum(row["alerts"] for row in figures["distribution_h"]) == len(groups["all"])


def test_response_in_chunks_gives_the_same_figures(loaded: Loaded, yearly: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut into chunks of at most 150 alerts, run 3 at a time: the same figures as in one piece."""
    monkeypatch.setattr(response, "CHUNK_ALERTS", 150)
    monkeypatch.setattr(response, "ACK_CHUNK_ALERTS", 200)
    request = Request("periodic", named_period(loaded.settings.reports, "yearly:2026"), None, "en")
    chunked = make_report(loaded.settings, loaded.client, request, now=NOW)["sections"]["response"]
    whole = yearly["sections"]["response"]
    assert chunked == {**whole, "source_queries": chunked["source_queries"]}
    # Recorded as the whole period's requests (what the figures equal), with the chunks they ran in.
    recorded = [{k: v for k, v in query.items() if k != "chunks"} for query in chunked["source_queries"]]
    assert recorded == whole["source_queries"]
    assert [len(query.get("chunks", ())) > 3 for query in chunked["source_queries"]] == [
        False, True, False, True, False]


def test_chunks_cover_the_period_once() -> None:
    day = 86_400_000
    days = [{"key": 20_000 * day + n * day, "doc_count": count} for n, count in enumerate((5, 5, 30, 1, 1, 1))]
    assert response.chunks([], 10) == [(None, None)]
    assert response.chunks(days[:2], 10) == [(None, None)]
    cuts = response.chunks(days, 10)
    assert cuts == [(None, response.iso_ms(days[2]["key"])),
                    (response.iso_ms(days[2]["key"]), response.iso_ms(days[3]["key"])),
                    (response.iso_ms(days[3]["key"]), None)]


def test_coverage_and_retention_figures(loaded: Loaded, yearly: dict[str, Any]) -> None:
    events = [doc for _, _, doc in loaded.documents["events"]]
    coverage = yearly["sections"]["coverage"]
    assert coverage["events"] == len(events)
    assert coverage["nodes_reporting"] == len({doc["socflow"]["node"]["id"] for doc in events})
    silent_node = next(iter(yeardata.event_sources(YEAR, _inventory(loaded))))[0].id
    last = max(_epoch(doc["@timestamp"]) for doc in events
               if doc["socflow"]["node"]["id"] == silent_node and doc["event"]["id"].startswith(f"e{YEAR.seed}-000-"))
    assert [item["node"] for item in coverage["silent"]] == [silent_node]
    assert coverage["silent"][0]["gap_hours"] == round((YEAR.end.timestamp() - last) / 3600, 1)
    retention = yearly["sections"]["retention"]
    records = [doc for _, _, doc in loaded.documents["audit"]]
    assert len(retention["deletions"]["list"]) == len(records)
    assert retention["deletions"]["documents"] == sum(doc["after"]["documents"] for doc in records)
    assert [row["seq"] for row in retention["deletions"]["list"]] == [doc["seq"] for doc in records]
    assert retention["source_queries"][-1]["index"] == loaded.settings.reports.audit_index


def test_scope_district_counts_only_its_alerts(loaded: Loaded) -> None:
    period = named_period(loaded.settings.reports, "monthly:2026-06")
    report = make_report(loaded.settings, loaded.client, Request("operations", period, "district d03", "en"), now=NOW)
    expected = sum(1 for _, _, doc in loaded.documents["alerts"] if doc["socflow"]["node"]["district"] == "d03"
                   and period.start.timestamp() <= _epoch(doc["@timestamp"]) < period.end.timestamp())
    assert report["sections"]["monitoring"]["total"] == expected > 0


def _inventory(loaded: Loaded) -> Any:
    from ingest.assets import AssetInventory
    from ingest.normalize import resolve_config_path

    return AssetInventory.load(resolve_config_path(loaded.settings.collector.assets_path))
