"""Hunting and timelines over a month of stored events: how fast, on this machine.

    .venv/bin/python bench/hunt.py [--events 2000000] [--days 30] [--es-url URL] [--keep]

1. Generates a month of events (seeded): Sysmon process creations (half), Windows Security
   logons and failures (three tenths), web portal requests (a fifth), over 300 hosts and 800
   users, with a Word-spawns-encoded-PowerShell attack planted on a few days. They go into a
   spool a day at a time (``ingest.spool.SpoolWriter``, as a collector writes) and the real event
   writer (``alerts.eventstore.writer.EventWriter``) stores each day; store rate is printed.
2. Reference, in the same run: the detection core alone (``alerts.commands.replay.detect``, the
   function hunt and replay share) over 100,000 of the same events from memory, events/s.
3. One-rule hunts (``rules/windows/proc_creation_win_powershell_encoded_command.yml``) over the
   whole month and over one day: time to the first match, total time, events scanned per second
   (and the ratio to the reference), alerts found.
4. Timelines: ``entity_events`` for a host and for a user at random moments of the month
   (window 1 h, limit 500): median and 95th percentile latency.

By default a private Elasticsearch (port 19236, heap 1 GB) is started, and stopped at the end;
the bench indices are deleted afterwards (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch import Elasticsearch  # noqa: E402

from alerts.commands.replay import detect, load_rules  # noqa: E402
from alerts.eventstore.timeline import Entity, entity_events  # noqa: E402
from alerts.eventstore.writer import EventWriter  # noqa: E402
from alerts.hunt.run import hunt  # noqa: E402
from alerts.settings import load_settings  # noqa: E402
from bench.pipeline import ATTACK, BENIGN  # noqa: E402
from bench.pipeline import event as sysmon_event  # noqa: E402
from deploy import elasticsearch  # noqa: E402
from deploy.settings import StackSettings  # noqa: E402
from ingest.schema import format_timestamp, stable_id  # noqa: E402
from ingest.spool import SpoolWriter  # noqa: E402

RULE = REPO / "rules" / "windows" / "proc_creation_win_powershell_encoded_command.yml"
PREFIX, DEAD, ALERTS = "bench-hunt-events", "bench-hunt-deadletters", "bench-hunt-alerts"
START = datetime(2026, 10, 1, tzinfo=UTC)
HOSTS = [f"ag-{agency:03d}-pc{pc:03d}" for agency in range(1, 31) for pc in range(1, 11)]
USERS = [f"user{number:03d}" for number in range(800)]


def logon(rng: random.Random, moment: datetime, record: int, host: str, user: str) -> dict[str, Any]:
    failed = rng.random() < 0.1
    return {
        "@timestamp": format_timestamp(moment),
        "event": {"code": "4625" if failed else "4624", "provider": "Microsoft-Windows-Security-Auditing",
                  "category": ["authentication"], "outcome": "failure" if failed else "success"},
        "host": {"name": host}, "user": {"name": user},
        "source": {"ip": f"10.{rng.randint(1, 30)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"},
        "winlog": {"channel": "Security", "event_id": 4625 if failed else 4624, "computer_name": host,
                   "record_id": record, "event_data": {"TargetUserName": user, "LogonType": rng.choice((2, 3, 10)),
                                                       "IpAddress": "10.0.0.1", "WorkstationName": host}},
        "socflow": {"logsource": {"product": "windows", "service": "security"}},
    }


def web(rng: random.Random, moment: datetime) -> dict[str, Any]:
    path = rng.choice(("/", "/dich-vu-cong/nop-ho-so", "/tra-cuu-ho-so", "/static/app.js"))
    return {
        "@timestamp": format_timestamp(moment),
        "event": {"dataset": "nginx.access", "category": ["web"]},
        "host": {"name": "portal-web01"}, "source": {"ip": f"203.0.113.{rng.randint(1, 254)}"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
        "url": {"original": path, "path": path},
        "socflow": {"logsource": {"category": "webserver"}},
    }


def day_events(rng: random.Random, day: int, count: int, attack: bool) -> list[dict[str, Any]]:
    base = START + timedelta(days=day)
    events = []
    for number in range(count):
        moment = base + timedelta(seconds=86400 * number / count)
        host = rng.choice(HOSTS)
        record = day * 10_000_000 + number
        draw = rng.random()
        if draw < 0.5:
            image, parent, arguments = rng.choice(BENIGN)
            item = sysmon_event(record, host, image, parent, arguments, moment.timestamp())
        elif draw < 0.8:
            item = logon(rng, moment, record, host, rng.choice(USERS))
        else:
            item = web(rng, moment)
        item["event"]["id"] = stable_id("bench-hunt", day, number)
        events.append(item)
    if attack:  # planted at 10:00 of the day
        image, parent, arguments = ATTACK
        item = sysmon_event(day * 10_000_000 + count, HOSTS[day % len(HOSTS)], image, parent, arguments,
                            (base + timedelta(hours=10)).timestamp())
        item["event"]["id"] = stable_id("bench-hunt-attack", day)
        events.append(item)
        events.sort(key=lambda e: e["@timestamp"])
    return events


def private_stack() -> StackSettings:
    base = load_settings().stack.for_tests()
    return base.model_copy(update={
        "run_dir": base.effective_run_dir.with_name(base.effective_run_dir.name + "-bench-hunt"),
        "elasticsearch_port": 19236, "elasticsearch_transport_port": 19336, "elasticsearch_heap": "1g"})


def drop_indices(client: Elasticsearch) -> None:
    for prefix in (PREFIX, DEAD, ALERTS):
        names = sorted(client.indices.get(index=f"{prefix}-*", allow_no_indices=True))
        for first in range(0, len(names), 50):  # by name: wildcard deletes are refused
            client.indices.delete(index=",".join(names[first:first + 50]))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the month (default 2000000)")
    parser.add_argument("--days", type=int, default=30, help="days (default 30)")
    parser.add_argument("--es-url", help="an Elasticsearch to use; default: a private one")
    parser.add_argument("--keep", action="store_true", help="keep the bench indices")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    stack = None
    if args.es_url:
        url = args.es_url
    else:
        stack = private_stack()
        url = elasticsearch.start(stack).url
    settings = load_settings(elasticsearch={"url": url, "index_prefix": ALERTS, "request_timeout_s": 300},
                             event_store={"index_prefix": PREFIX, "deadletter_prefix": DEAD, "metrics_port": 0})
    client = Elasticsearch(url, request_timeout=300)
    work = Path(tempfile.mkdtemp(prefix="socflow-bench-hunt-"))
    rng = random.Random(args.seed)
    attack_days = {2, 11, 19, args.days - 1}
    per_day = args.events // args.days
    figures: dict[str, Any] = {"events": 0, "days": args.days}
    try:
        drop_indices(client)  # a previous run's leftovers would keep their (same-id) events
        spool = work / "spool"
        writer = EventWriter(client, spool, settings.event_store)
        sample: list[dict[str, Any]] = []
        generate_s = store_s = 0.0
        for day in range(args.days):
            started = time.perf_counter()
            events = day_events(rng, day, per_day, day in attack_days)
            if not sample:
                sample = events[:100_000]
            collector = SpoolWriter(spool, "bench", batch_size=500)
            for item in events:
                collector.append(item)
            collector.commit({"day": day})
            generate_s += time.perf_counter() - started
            started = time.perf_counter()
            stats = writer.run_once(refresh=False)
            store_s += time.perf_counter() - started
            figures["events"] += stats.indexed
            for segment in (spool / "segments").glob("*"):  # stored: the spool need not keep them
                segment.unlink()
            print(f"day {day + 1}/{args.days}: {figures['events']} events stored "
                  f"({figures['events'] / store_s:,.0f}/s)", file=sys.stderr, flush=True)
        client.indices.refresh(index=PREFIX)
        client.options(request_timeout=1800).indices.forcemerge(index=PREFIX, max_num_segments=1)
        stored_bytes = client.indices.stats(index=PREFIX, metric="store")["_all"]["primaries"]["store"][
            "size_in_bytes"]
        figures.update(generate_s=round(generate_s, 1), store_s=round(store_s, 1),
                       store_events_per_s=round(figures["events"] / store_s),
                       bytes_per_event=round(stored_bytes / figures["events"], 1))

        engine, _ = load_rules([RULE])
        started = time.perf_counter()
        reference = detect(engine, [sample[i:i + 2000] for i in range(0, len(sample), 2000)], settings,
                           detectors=False)
        figures["core_events_per_s"] = round(reference.events / (time.perf_counter() - started))

        end = START + timedelta(days=args.days)
        for label, start_at, stop_at in (("month", START, end),
                                         ("one day", START + timedelta(days=11), START + timedelta(days=12))):
            outcome = hunt(client, settings, [RULE], start_at, stop_at, on_total=lambda _total: None)
            scanned = outcome.result.events
            figures[f"hunt_{label}"] = {
                "candidates": outcome.candidates, "scanned": scanned, "alerts": len(outcome.result.detections),
                "first_match_s": round(outcome.first_detection_s or -1, 2), "total_s": round(outcome.seconds, 2),
                "events_per_s": round(scanned / outcome.seconds),
                "ratio_to_core": round(scanned / outcome.seconds / figures["core_events_per_s"], 2)}

        timing: dict[str, list[float]] = {"host": [], "user": []}
        found: dict[str, list[int]] = {"host": [], "user": []}
        for _ in range(20):
            at = START + timedelta(seconds=rng.uniform(3600, args.days * 86400 - 3600))
            for kind, value in (("host", rng.choice(HOSTS)), ("user", rng.choice(USERS))):
                started = time.perf_counter()
                timeline = entity_events(client, settings, Entity(kind, value), at, timedelta(hours=1))  # type: ignore[arg-type]
                timing[kind].append(time.perf_counter() - started)
                found[kind].append(len(timeline.events))
        figures["timeline_ms"] = {kind: {"median": round(statistics.median(v) * 1000, 1),
                                         "p95": round(percentile(v, 0.95) * 1000, 1),
                                         "events_median": statistics.median(found[kind])}
                                  for kind, v in timing.items()}
        figures["load_avg_1m"] = round(os.getloadavg()[0], 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            drop_indices(client)
        if stack is not None:
            elasticsearch.stop(stack)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
