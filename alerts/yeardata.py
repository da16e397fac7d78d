"""A generated year of the provincial network, for the reports' tests and bench (seeded).

Beside ``alerts.scenario`` (the demo's day) and, like it, deterministic: the same seed and size
give the same documents. What it holds, over the Circular 12 yearly period ``yearly:YEAR``:

- alerts from every node of the inventory (weighted: data-center nodes and level-4/5 systems
  alert more), from a fixed set of rules with levels and ATT&CK tactics; a share closed by
  analysts with a verdict (some rules mostly false positives) and a close time; the closed and
  acknowledged ones with their first response as triage stamps it (``acknowledged_at``,
  ``ack_seconds``: most within the hour or a few, a tail of days; some closed straight from the
  queue, acknowledged when closed). Its draws come from a generator of their own, so the rest of
  the year is the same as before they were added;
- incidents of some alerts, with triage actions in their timelines, one reported late and one
  never reported (overdue);
- events of the last ``event_days`` days from a set of node/logsource pairs, one of which
  falls silent five days before the period's end, and one logsource with a hostile name;
- retention deletions, as ``socflow retention`` chains them into the audit trail (appended by
  the caller through ``alerts.audit.trail.AuditTrail``, so the trail verifies).

Documents are yielded as ``(index, id, source)``; :func:`bulk_load` writes them (tests, bench).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ingest.assets import AssetInventory, Node
from ingest.schema import format_timestamp

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
HOSTILE = '<script>alert("x")</script> & "quoted" \u202e'
# (rule id, name, level, tactics, false-positive share of its verdicts)
RULES: tuple[tuple[str, str, str, tuple[str, ...], float], ...] = (
    ("r-01", "Password Spraying Against Webmail", "high", ("Credential Access",), 0.1),
    ("r-02", "SQL Injection Probe In URL", "medium", ("Initial Access",), 0.3),
    ("r-03", "Path Traversal Probe", "medium", ("Initial Access",), 0.4),
    ("r-04", "Office Application Spawns PowerShell", "high", ("Execution",), 0.05),
    ("r-05", "Encoded PowerShell Command", "high", ("Execution", "Stealth"), 0.1),
    ("r-06", "Vulnerability Scanner User Agent", "low", ("Reconnaissance",), 0.7),
    ("r-07", "Port Scan From Internal Host", "medium", ("Discovery",), 0.5),
    ("r-08", "New Admin Source Address", "medium", ("Privilege Escalation",), 0.6),
    ("r-09", "Beaconing To Rare Domain", "high", ("Command And Control",), 0.2),
    ("r-10", "Brute Force Then Success", "critical", ("Credential Access", "Initial Access"), 0.02),
    ("r-11", "Volume Anomaly Of Node", "low", ("Impact",), 0.8),
    ("r-12", "Suspicious Scheduled Task", "medium", ("Persistence",), 0.3),
    ("r-13", "LSASS Memory Access", "critical", ("Credential Access",), 0.01),
    ("r-14", "DNS Tunnelling Pattern", "high", ("Exfiltration", "Command And Control"), 0.25),
    ("r-15", "Failed Logins Informational", "informational", (), 0.9),
)
RULE_WEIGHTS = (6, 8, 6, 1, 2, 20, 6, 4, 2, 0.3, 15, 3, 0.2, 1, 25)
SOURCES = (("windows", None, "security"), ("windows", None, "sysmon"), (None, "webserver", None),
           ("linux", None, "auth"), ("socflow", None, "mail-auth"), (None, "firewall", None))


@dataclass(frozen=True)
class Year:
    """Where the generated year sits and how big it is."""

    year: int = 2026
    alerts: int = 20_000
    incidents: int = 12
    event_days: int = 10
    events_per_source_day: int = 6
    event_nodes: int = 12
    closed_share: float = 0.25
    seed: int = 17

    @property
    def start(self) -> datetime:
        return datetime(self.year - 1, 12, 15, tzinfo=ZONE)

    @property
    def end(self) -> datetime:
        return datetime(self.year, 12, 15, tzinfo=ZONE)


def _weight(node: Node) -> float:
    return (3.0 if node.kind == "data-center" else 1.0) * (1 + node.security_level / 2)


def alerts(year: Year, inventory: AssetInventory, prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``year.alerts`` alert documents spread over the period (monthly indices of ``prefix``)."""
    rng = random.Random(year.seed)  # noqa: S311 - seeded test data, not secrets
    nodes = list(inventory.nodes)
    node_weights = [_weight(node) for node in nodes]
    span = (year.end - year.start).total_seconds()
    picked_nodes = rng.choices(nodes, weights=node_weights, k=year.alerts)
    picked_rules = rng.choices(RULES, weights=RULE_WEIGHTS, k=year.alerts)
    ack_rng = random.Random(year.seed + 4)  # noqa: S311 - seeded test data, not secrets
    last = year.end - timedelta(seconds=1)
    for number in range(year.alerts):
        node, (rule_id, name, level, tactics, fp_share) = picked_nodes[number], picked_rules[number]
        moment = year.start + timedelta(seconds=int(rng.random() * span))
        stamp = format_timestamp(moment)
        alert_id = f"y{year.seed}-{number:07d}"
        status, triage = "open", {}
        roll = rng.random()
        acked = min(moment + _ack_delay(ack_rng), last)
        straight_to_close = ack_rng.random() < 0.3
        if roll < year.closed_share:
            delay = timedelta(minutes=int(rng.lognormvariate(5.0, 1.2)))  # median ~2.5 h
            closed = min(moment + delay, last)
            verdict = "false_positive" if rng.random() < fp_share else rng.choice(("true_positive", "benign"))
            status = "closed"
            acked = closed if straight_to_close or acked > closed else acked
            triage = {"verdict": verdict, "reason": "generated", "closed_at": format_timestamp(closed),
                      "closed_by": "analyst1", "updated_at": format_timestamp(closed), "updated_by": "analyst1",
                      **_first_response(moment, acked)}
        elif roll < year.closed_share + 0.05:
            status = "acknowledged"
            triage = {"updated_at": format_timestamp(acked), "updated_by": "analyst2", **_first_response(moment, acked)}
        document: dict[str, Any] = {
            "@timestamp": stamp,
            "event": {"kind": "alert", "id": alert_id},
            "rule": {"id": rule_id, "name": name, "level": level},
            "threat": {"framework": "MITRE ATT&CK", **({"tactic": {"name": list(tactics)}} if tactics else {})},
            "socflow": {"node": node.as_event_field(),
                        "alert": {"status": status, "first_seen": stamp, "last_seen": stamp, "count": 1,
                                  "version": 1}},
        }
        if triage:
            document["socflow"]["triage"] = triage
        yield f"{prefix}-{moment.astimezone(UTC):%Y.%m}", alert_id, document


def _ack_delay(rng: random.Random) -> timedelta:
    """Time to first response: lognormal around 25 minutes, p90 about 2 h; one in 25 waits days."""
    seconds = int(rng.lognormvariate(7.3, 1.3))
    if rng.random() < 0.04:
        seconds += rng.randrange(86_400, 10 * 86_400)
    return timedelta(seconds=seconds)


def _first_response(raised: datetime, acked: datetime) -> dict[str, Any]:
    """The fields triage stamps when an alert first leaves ``open`` (alerts.triage.model)."""
    return {"acknowledged_at": format_timestamp(acked), "acknowledged_by": "analyst2",
            "ack_seconds": int((acked - raised).total_seconds())}


def incidents(year: Year, inventory: AssetInventory, index: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Incidents through the year: most reported on time, ``INC-LATE`` late, ``INC-OVERDUE`` never."""
    rng = random.Random(year.seed + 1)  # noqa: S311 - seeded test data, not secrets
    nodes = [node for node in inventory.nodes if node.security_level >= 3] or list(inventory.nodes)
    for number in range(year.incidents):
        ident = "INC-OVERDUE" if number == year.incidents - 1 else "INC-LATE" if number == 1 else f"INC-{number:03d}"
        detected = year.start + timedelta(days=int(rng.random() * 340), hours=rng.randint(0, 23))
        if ident == "INC-OVERDUE":
            detected = year.end - timedelta(days=20)
        reported = None if ident == "INC-OVERDUE" else detected + timedelta(hours=200 if ident == "INC-LATE"
                                                                           else rng.randint(4, 100))
        node = rng.choice(nodes)
        title = f"Generated incident {number}" + (f" {HOSTILE}" if number == 0 else "")
        timeline = [{"at": format_timestamp(detected + timedelta(hours=1)), "by": "analyst1", "action": "create",
                     "text": title},
                    {"at": format_timestamp(detected + timedelta(hours=3)), "by": "analyst2", "action": "status",
                     "text": "investigating"}]
        yield index, ident, {
            "id": ident, "title": title, "severity": rng.choice(("medium", "high", "critical")),
            "status": "closed" if reported else "investigating", "owner": "analyst1",
            "created_at": format_timestamp(detected + timedelta(hours=1)), "created_by": "analyst1",
            "detected_at": format_timestamp(detected), "updated_at": format_timestamp(detected + timedelta(hours=3)),
            "reported_at": format_timestamp(reported) if reported else None,
            "alerts": [f"y{year.seed}-{rng.randrange(year.alerts):07d}" for _ in range(3)],
            "nodes": [node.id], "agencies": [node.agency], "timeline": timeline}


def event_sources(year: Year, inventory: AssetInventory) -> list[tuple[Node, tuple[str | None, ...]]]:
    rng = random.Random(year.seed + 2)  # noqa: S311 - seeded test data, not secrets
    nodes = rng.sample(list(inventory.nodes), min(year.event_nodes, len(inventory.nodes)))
    pairs: list[tuple[Node, tuple[str | None, ...]]] = [
        (node, source) for node in nodes for source in rng.sample(SOURCES, 2)]
    # A hostile logsource name, as a collector might pass one through.
    pairs.append((nodes[0], (None, None, HOSTILE)))
    return pairs


SILENT_DAYS = 5  # the first pair stops this many days before the period's end


def events(year: Year, inventory: AssetInventory, prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Events of the last ``event_days`` days; the first source falls silent ``SILENT_DAYS`` before the end."""
    rng = random.Random(year.seed + 3)  # noqa: S311 - seeded test data, not secrets
    first_day = year.end - timedelta(days=year.event_days)
    for pair_number, (node, (product, category, service)) in enumerate(event_sources(year, inventory)):
        stop = year.end - timedelta(days=SILENT_DAYS) if pair_number == 0 else year.end
        for day in range(year.event_days):
            for number in range(year.events_per_source_day):
                moment = first_day + timedelta(days=day, seconds=rng.randrange(86_400))
                if moment >= stop:
                    continue
                stamp = format_timestamp(moment)
                ident = f"e{year.seed}-{pair_number:03d}-{day:03d}-{number:04d}"
                logsource = {k: v for k, v in (("product", product), ("category", category), ("service", service))
                             if v}
                yield f"{prefix}-{stamp[0:4]}.{stamp[5:7]}.{stamp[8:10]}", ident, {
                    "@timestamp": stamp, "event": {"id": ident, "kind": "event"},
                    "host": {"name": f"{node.id}-h1"},
                    "socflow": {"node": node.as_event_field(), "logsource": logsource}}


def retention_records(year: Year) -> Iterator[dict[str, Any]]:
    """Monthly retention runs, one alert deletion by query each, as ``AuditTrail.append`` arguments.

    The shape ``socflow retention`` chains (``alerts.retention.AuditLog.record``): action
    ``retention_<action>``, target ``index:<name>``, the details under ``after``. Callers append
    them through ``AuditTrail`` so the year's audit index is a verifiable chain.
    """
    for month in range(12):
        moment = year.start + timedelta(days=30 * month + 2)
        ident = f"ret-{year.seed}-{month:02d}"
        index = f"socflow-alerts-{2024 + month // 12}.01"
        yield {"actor": "socflow-cron", "action": "retention_delete_by_query", "target": f"index:{index}",
               "after": {"outcome": "success", "record_id": f"{ident}-0", "host": "soc01",
                         "action": "delete_by_query", "index": index, "documents": 100 + month, "level": 1,
                         "days": 180, "cutoff": format_timestamp(moment - timedelta(days=180)),
                         "dry_run": False, "run_id": ident, "policy_file": "config/retention.yaml"},
               "now": moment}


def bulk_load(client: Any, documents: Iterator[tuple[str, str, dict[str, Any]]], *, chunk: int = 5000) -> int:
    """Index ``documents`` with the bulk API (create, so a rerun cannot change what is there); the count."""
    from elasticsearch import helpers

    actions = ({"_op_type": "create", "_index": index, "_id": ident, "_source": source}
               for index, ident, source in documents)
    written, errors = helpers.bulk(client.options(request_timeout=120), actions, chunk_size=chunk,
                                   raise_on_error=False)
    if isinstance(errors, list) and errors:
        raise RuntimeError(f"bulk load refused {len(errors)} documents, e.g. {errors[0]}")
    return int(written)
