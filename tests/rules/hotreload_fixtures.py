"""Rule sets and events of the hot-reload tests: one rule that fires on every event, in two versions.

Every event matches the rule in both versions, so every event yields exactly one detection and
the version on it says which rule set judged it: "judged twice or not at all" becomes countable.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.indexer import finished_files
from ingest.spool import SpoolWriter

RULE_ID = "5b0d7c7e-5f4e-4d0a-9a51-3c1f3f0e2a01"
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
BATCH = 40  # events per spool line / Kafka record


def write_rule_set(directory: Path, *, level: str, title: str = "Hot-reload probe request") -> Path:
    """A rule directory holding the probe rule at ``level`` (a different level: a new version)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hotreload_probe.yml").write_text(
        f"""title: {title}
id: {RULE_ID}
status: test
description: Fires on every request under /hr/ (test rule of the hot-reload tests).
author: socflow
date: 2026-12-07
logsource:
  category: webserver
detection:
  selection:
    cs-uri-stem|startswith: '/hr/'
  condition: selection
level: {level}
""", encoding="utf-8")
    return directory


def events(start: int, count: int) -> list[dict[str, Any]]:
    """Events ``start`` .. ``start+count-1``, each with its own host (its own alert)."""
    out = []
    for number in range(start, start + count):
        moment = START + timedelta(milliseconds=10 * number)
        out.append({
            "@timestamp": moment.isoformat().replace("+00:00", "Z"),
            "event": {"id": f"hr-{number:07d}", "dataset": "iis.access"},
            "host": {"name": f"web-{number:07d}"},
            "socflow": {"logsource": {"category": "webserver", "service": "iis"}},
            "url": {"original": f"/hr/{number}", "path": f"/hr/{number}"},
        })
    return out


class Feeder(threading.Thread):
    """A steady stream: one batch of BATCH events every ``period_s``, as a spool segment or, with
    ``kafka`` (bootstrap, topic), as one Kafka record (the same JSON array)."""

    def __init__(self, spool: Path, period_s: float = 0.2, kafka: tuple[str, str] | None = None,
                 partitions: int = 0) -> None:
        super().__init__(daemon=True)
        self.writer = SpoolWriter(spool, "hotreload", batch_size=BATCH) if kafka is None else None
        self.kafka = kafka
        self.partitions = partitions  # >0: batch n to partition n % partitions (else the producer's choice)
        self.period_s = period_s
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        producer = None
        if self.kafka is not None:
            from confluent_kafka import Producer

            producer = Producer({"bootstrap.servers": self.kafka[0], "enable.idempotence": True})
        while not self.stop.is_set():
            batch = events(self.sent, BATCH)
            if producer is not None and self.kafka is not None:
                # -1: librdkafka's "unassigned" (its partitioner chooses).
                partition = (self.sent // BATCH) % self.partitions if self.partitions else -1
                producer.produce(self.kafka[1], json.dumps(batch).encode("utf-8"), partition=partition)
                assert producer.flush(30) == 0, "Kafka did not take a record"
            elif self.writer is not None:
                for event in batch:
                    self.writer.append(event)
                self.writer.commit({"sent": self.sent + BATCH})
            self.sent += BATCH
            self.stop.wait(self.period_s)


def probe_records(stream: Path) -> list[dict[str, Any]]:
    """The probe rule's alerts in the committed alert stream (the anomaly detectors of config/ may
    alert on the stream too)."""
    return [record for path in finished_files(stream)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            for record in [json.loads(line)] if record["rule"]["id"] == RULE_ID]


def alerts_by_event(stream: Path) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    records = probe_records(stream)
    seen = Counter(record["event_ids"][0] for record in records)
    return {record["event_ids"][0]: record for record in records}, seen


def versions_seen(stream: Path) -> set[str]:
    return {record["rule"].get("ruleset_version", "") for record in probe_records(stream)}


# Correlations and detector thresholds across a switch -------------------------------------------

MARK_ID = "5b0d7c7e-5f4e-4d0a-9a51-3c1f3f0e2a02"
CORRELATION_ID = "5b0d7c7e-5f4e-4d0a-9a51-3c1f3f0e2a03"
BRUTEFORCE = "socflow_bruteforce"


def write_stateful_set(directory: Path, *, level: str, gte: int = 3, failures: int = 10) -> tuple[Path, Path]:
    """The probe rule at ``level``, a marked-request rule, a correlation firing on ``gte`` marked
    requests of one host within 10 minutes, and detector settings (config's, with brute force at
    ``failures`` failures): (rule directory, detectors.yaml)."""
    import yaml

    write_rule_set(directory, level=level)
    (directory / "hotreload_mark.yml").write_text(f"""title: Hot-reload marked request
id: {MARK_ID}
name: hr_marked
status: test
description: A request under /hr/mark/ (test rule of the hot-reload tests).
author: socflow
date: 2026-12-07
logsource:
  category: webserver
detection:
  selection:
    cs-uri-stem|startswith: '/hr/mark/'
  condition: selection
level: low
""", encoding="utf-8")
    (directory / "hotreload_marked_thrice.yml").write_text(f"""title: Hot-reload marked requests from one host
id: {CORRELATION_ID}
name: hr_marked_thrice
status: test
description: Marked requests from one host (test correlation of the hot-reload tests).
author: socflow
date: 2026-12-07
correlation:
  type: event_count
  rules:
    - hr_marked
  group-by:
    - host.name
  timespan: 10m
  condition:
    gte: {gte}
level: high
""", encoding="utf-8")
    from alerts.settings import REPO_ROOT

    settings = yaml.safe_load((REPO_ROOT / "config" / "detectors.yaml").read_text(encoding="utf-8"))
    settings["detectors"]["bruteforce"]["failures"] = failures
    detectors = directory.parent / f"{directory.name}-detectors.yaml"
    detectors.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return directory, detectors


def marked(number: int, host: str) -> dict[str, Any]:
    """A marked request (matches the probe rule and the marked-request rule) from ``host``."""
    event = events(number, 1)[0]
    event["event"]["id"] = f"hr-mark-{number:07d}"
    event["host"]["name"] = host
    event["url"] = {"original": f"/hr/mark/{number}", "path": f"/hr/mark/{number}"}
    return event


def failed_logon(number: int, user: str) -> dict[str, Any]:
    """A failed logon of ``user`` at the time of event ``number`` (brute-force detector input)."""
    moment = START + timedelta(milliseconds=10 * number)
    return {"@timestamp": moment.isoformat().replace("+00:00", "Z"),
            "event": {"id": f"hr-fail-{number:07d}", "category": ["authentication"], "outcome": "failure"},
            "user": {"name": user}, "source": {"ip": "10.20.30.40"}, "host": {"name": "dc-hr"}}
