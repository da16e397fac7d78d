"""Alerts for triage tests: detections indexed into a real Elasticsearch the indexer's way.

Varied on purpose (rules of every level with ATT&CK tags, data-center and agency nodes,
hosts, users, sources, times), plus one alert carrying the hostile strings analysts meet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from alerts.indexer import Indexer, connect, install_template
from alerts.settings import load_settings
from alerts.triage.store import TriageStore
from detectors.model import Detection, RuleInfo
from ingest.assets import AssetInventory
from ingest.schema import format_timestamp

REPO = Path(__file__).resolve().parents[2]
BASE = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
RULES = [
    RuleInfo(id="r-sqli", title="SQL Injection Attempt", level="high",
             tags=("attack.initial-access", "attack.t1190")),
    RuleInfo(id="r-ps", title="Encoded PowerShell", level="critical",
             tags=("attack.execution", "attack.t1059.001")),
    RuleInfo(id="r-login", title="Mail Login Failed", level="low",
             tags=("attack.credential-access", "attack.t1110.003")),
    RuleInfo(id="r-scan", title="Scanner User Agent", level="medium", tags=("attack.reconnaissance", "attack.t1595")),
]
NODES = ("dc-portal", "dc-mail", "cp-001", "cp-002")
HOSTILE = {
    "script": "<script>window.__pwned=1</script>",
    "quotes": "\"'><img src=x onerror=\"window.__pwned=2\">",
    "control": "line1\x1b[31mred\x07\x00end",
    "rtl": "invoice\u202egpj.exe",
    "long": "A" * 100_000,
}


@dataclass
class Indexed:
    """What a test got: the store's alias, the client and the alerts' ids by label."""

    prefix: str
    client: Elasticsearch
    ids: dict[str, str] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


class RecordingAudit:
    """An audit sink that keeps what it was given (service tests; the API tests use AuditTrail)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, *, actor: str, action: str, target: str, before: object = None, after: object = None,
               now: datetime, source_ip: str | None = None) -> dict[str, Any]:
        record = {"actor": actor, "action": action, "target": target, "before": before, "after": after,
                  "now": now, "source_ip": source_ip}
        self.records.append(record)
        return record


def _event(number: int, node: dict[str, Any], *, host: str, user: str, source: str, moment: datetime,
           url: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@timestamp": format_timestamp(moment), "event": {"id": f"ev-{number}", "dataset": "test"},
        "host": {"name": host}, "user": {"name": user}, "source": {"ip": source},
        "socflow": {"node": node, "logsource": {"category": "webserver"}},
    }
    if url is not None:
        event["url"] = {"original": url}
    return event


def detections(count: int = 24) -> Iterator[tuple[str, Detection]]:
    """``count`` labelled detections spread over rules, nodes, entities and an hour each."""
    inventory = AssetInventory.load(REPO / "config" / "assets.yaml")
    by_id = {node.id: node.as_event_field() for node in inventory.nodes}
    for number in range(count):
        rule = RULES[number % len(RULES)]
        node = by_id[NODES[number % len(NODES)]]
        event = _event(number, node, host=f"host-{number % 5}", user=f"user.{number % 3}",
                       source=f"198.51.100.{number % 7}", moment=BASE + timedelta(minutes=10 * number),
                       url=f"/q?id={number}")
        yield f"a{number}", Detection.for_events(rule, [event])
    hostile_event = _event(999, by_id["dc-portal"], host="portal-web01", user=HOSTILE["quotes"],
                           source="192.0.2.77", moment=BASE + timedelta(minutes=5),
                           url="/tra-cuu-ho-so?ma_ho_so=1' OR '1'='1" + HOSTILE["script"] + HOSTILE["control"]
                           + HOSTILE["rtl"] + HOSTILE["long"])
    yield "hostile", Detection.for_events(RULES[0], [hostile_event])


def index_alerts(tmp_path: Path, url: str, count: int = 24) -> Indexed:
    """Index the test alerts under a fresh prefix through the real indexer."""
    prefix = f"t-triage-{uuid.uuid4().hex[:10]}"
    settings = load_settings(elasticsearch={"url": url, "index_prefix": prefix})
    client = connect(settings.elasticsearch)
    install_template(client, prefix)
    stream = tmp_path / f"stream-{prefix}"
    stream.mkdir()
    labelled = list(detections(count))
    (stream / "alerts-0-0.jsonl").write_text(
        "\n".join(json.dumps(detection.as_record()) for _, detection in labelled) + "\n", encoding="utf-8")
    stats = Indexer(client, stream, tmp_path / f"state-{prefix}", settings.elasticsearch, settings.indexer).run_once()
    assert stats.indexed == len(labelled), stats
    indexed = Indexed(prefix=prefix, client=client)
    for label, detection in labelled:
        indexed.ids[label] = detection.id
    return indexed


def make_store(indexed: Indexed, audit: RecordingAudit | Any, *, refresh: bool = True) -> TriageStore:
    store = TriageStore(indexed.client, alerts=indexed.prefix, incidents=f"{indexed.prefix}_incidents",
                        filters=f"{indexed.prefix}_filters", audit=audit, refresh=refresh)
    store.install()
    return store


def drop(indexed: Indexed) -> None:
    """Delete every index the test made (by name: wildcard deletes are refused)."""
    for name in indexed.client.indices.get(index=f"{indexed.prefix}*", allow_no_indices=True):
        indexed.client.indices.delete(index=name)
    indexed.client.indices.delete_index_template(name=indexed.prefix)
