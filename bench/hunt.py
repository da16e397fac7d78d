"""Hunting and timelines over a month of stored events: how fast, on this machine.

    .venv/bin/python bench/hunt.py [--events 10000000] [--days 30] [--keep] [--reuse] [--store-only]

1. Generates a month of events (seeded): Sysmon process creations (half), Windows Security
   logons and failures (three tenths), web portal requests (a fifth, two fifths of them to the
   portal's API, 5% of those answered 401/403/404), over 300 hosts and 800 users; on four days
   a Word-spawns-encoded-PowerShell process and an SQL injection request are planted. A child
   process writes each day into a spool (``ingest.spool.SpoolWriter``, as a collector does)
   while the real event writer (``alerts.eventstore.writer.EventWriter``) stores the previous
   one; then a force merge. ``--keep`` keeps the indices, ``--reuse`` hunts over them again.
2. References, in the same run: a plain ``count`` of the month's events, and the detection
   core alone (``alerts.commands.replay.detect``, the function hunt and replay share) over
   100,000 of the same events from memory, events/s.
3. One-rule hunts over the whole month: a rule that matches rarely on indexed fields (SQL
   injection, ``url.query``) and one that matches often (API client errors, ``url.path``); a
   rare Windows rule, whose fields are in ``winlog.event_data``, which the store does not index
   (so only its channel and event id narrow the query: half the events), over one day
   (``--windows-month``: over the month too). The same day's candidates read without rules,
   the way the hunt reads them and the way it read them before (documents with the hits).
   Time to the first match, total time, events examined per second (candidates read, and the
   range's events) and the ratio to the core.
4. Timelines: ``entity_events`` for a host and for a user at random moments of the month
   (window 1 h, limit 500): median and 95th percentile latency.

A private Elasticsearch (port 19237, heap 1 GB; bench/reports.py has 19236) is started and
stopped at the end; the bench indices are deleted unless ``--keep`` or ``--store-only``.
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
from alerts.hunt.select import candidate_query, rule_logsources  # noqa: E402
from alerts.hunt.store import read_pages  # noqa: E402
from alerts.settings import load_settings  # noqa: E402
from bench.pipeline import ATTACK, BENIGN  # noqa: E402
from bench.pipeline import event as sysmon_event  # noqa: E402
from deploy import elasticsearch  # noqa: E402
from deploy.settings import StackSettings  # noqa: E402
from ingest.logsource import LogsourceTable  # noqa: E402
from ingest.schema import format_timestamp, stable_id  # noqa: E402
from ingest.spool import SpoolWriter  # noqa: E402

ENCODED = REPO / "rules" / "windows" / "proc_creation_win_powershell_encoded_command.yml"  # 4 matches
SQL_INJECTION = REPO / "rules" / "web" / "web_portal_sql_injection.yml"  # 4 matches
API_ERRORS = REPO / "rules" / "web" / "web_portal_api_client_error.yml"  # 0.4% of the events
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
    draw = rng.random()
    if draw < 0.6:
        path, query, status = rng.choice(("/", "/dich-vu-cong/nop-ho-so", "/tra-cuu-ho-so", "/static/app.js")), "", 200
    else:  # the portal's API: now and then a client error (what API_ERRORS matches, often)
        path = f"/api/v1/ho-so/H{rng.randint(10, 99)}.{rng.randint(1000, 9999)}"
        query = f"trang={rng.randint(1, 9)}&loai=dat-dai"
        status = rng.choice((401, 403, 404)) if rng.random() < 0.05 else 200
    return web_event(rng, moment, path, query, status)


def web_event(rng: random.Random, moment: datetime, path: str, query: str, status: int) -> dict[str, Any]:
    original = f"{path}?{query}" if query else path
    url: dict[str, Any] = {"original": original, "path": path, **({"query": query} if query else {})}
    return {
        "@timestamp": format_timestamp(moment),
        "event": {"dataset": "nginx.access", "category": ["web"]},
        "host": {"name": "portal-web01"}, "source": {"ip": f"203.0.113.{rng.randint(1, 254)}"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": status}},
        "url": url,
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
        probe = web_event(rng, base + timedelta(hours=11), "/tra-cuu-ho-so", "ma=H12.3456' or 1=1--", 500)
        probe["event"]["id"] = stable_id("bench-hunt-sqli", day)  # what SQL_INJECTION matches, rarely
        events.append(probe)
        events.sort(key=lambda e: e["@timestamp"])
    return events


def private_stack() -> StackSettings:
    base = load_settings().stack.for_tests()
    return base.model_copy(update={
        "run_dir": base.effective_run_dir.with_name(base.effective_run_dir.name + "-bench-hunt"),
        "elasticsearch_port": 19237, "elasticsearch_transport_port": 19337, "elasticsearch_heap": "1g"})


def drop_indices(client: Elasticsearch) -> None:
    for prefix in (PREFIX, DEAD, ALERTS):
        names = sorted(client.indices.get(index=f"{prefix}-*", allow_no_indices=True))
        for first in range(0, len(names), 50):  # by name: wildcard deletes are refused
            client.indices.delete(index=",".join(names[first:first + 50]))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def generate(work: Path, days: int, per_day: int, seed: int, ready: Any, room: Any) -> None:
    """In a child process: each day's events into its own spool (as a collector writes them),
    at most two days ahead of the writer (``room``), the day's number on ``ready`` when sealed."""
    rng = random.Random(seed)
    attack_days = {2, 11, 19, days - 1}
    for day in range(days):
        room.acquire()
        events = day_events(rng, day, per_day, day in attack_days)
        collector = SpoolWriter(work / f"spool-{day:03d}", "bench", batch_size=500)
        for item in events:
            collector.append(item)
        collector.commit({"day": day})
        ready.put(day)
    ready.put(None)


def store_month(client: Elasticsearch, settings: Any, work: Path, days: int, per_day: int,
                seed: int) -> dict[str, Any]:
    """Generate the month in a child process and store it with the real event writer here."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, room = context.Queue(), context.Semaphore(2)
    child = context.Process(target=generate, args=(work, days, per_day, seed, ready, room), daemon=True)
    child.start()
    stored, store_s, began = 0, 0.0, time.perf_counter()
    try:
        while (day := ready.get()) is not None:
            spool = work / f"spool-{day:03d}"
            started = time.perf_counter()
            stored += EventWriter(client, spool, settings.event_store).run_once(refresh=False).indexed
            store_s += time.perf_counter() - started
            shutil.rmtree(spool, ignore_errors=True)  # stored: the spool need not keep it
            room.release()
            print(f"day {day + 1}/{days}: {stored:,} events stored ({stored / store_s:,.0f}/s writing, "
                  f"{time.perf_counter() - began:,.0f} s)", file=sys.stderr, flush=True)
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()
    client.indices.refresh(index=PREFIX)
    client.options(request_timeout=3600).indices.forcemerge(index=PREFIX, max_num_segments=1)
    return {"store_s": round(store_s, 1), "store_wall_s": round(time.perf_counter() - began, 1),
            "store_events_per_s": round(stored / store_s)}


def stored_events(client: Elasticsearch) -> int:
    if not client.indices.exists(index=PREFIX):
        return 0
    return int(client.count(index=PREFIX)["count"])


def hunt_figures(client: Elasticsearch, settings: Any, rule: Path, start_at: datetime, stop_at: datetime,
                 core: float) -> dict[str, Any]:
    """One hunt: time to its first match, total time, events per second (the candidates it
    examined, and the events of the range, whose count is timed here too)."""
    query = {"range": {"@timestamp": {"gte": start_at.isoformat(), "lt": stop_at.isoformat()}}}
    range_events = int(client.count(index=PREFIX, query=query)["count"])
    clock = time.perf_counter
    began = clock()
    first: list[float] = []

    def on_batch(_events: int, detections: int) -> None:
        if detections and not first:
            first.append(clock() - began)

    outcome = hunt(client, settings, [rule], start_at, stop_at, on_batch=on_batch)
    scanned = outcome.result.events
    return {"rule": rule.name, "candidates": outcome.candidates, "scanned": scanned, "pages": outcome.pages,
            "matches": outcome.matches, "alerts": len(outcome.result.detections),
            "first_match_s": round(first[0], 2) if first else None, "total_s": round(outcome.seconds, 2),
            "events_per_s": round(scanned / outcome.seconds),
            "range_events_per_s": round(range_events / outcome.seconds),
            "core_ratio": round(scanned / outcome.seconds / core, 2)}


def read_figures(client: Elasticsearch, settings: Any, rule: Path, start_at: datetime,
                 stop_at: datetime) -> dict[str, Any]:
    """Reading only (no rules): a day's candidates of ``rule`` as the hunt reads them (positions,
    then runs of documents), and as it read them before (documents with the hits, sorted on
    ``event.id`` too: ``read_pages`` with a limit still reads that way)."""
    engine, _ = load_rules([rule])
    table = LogsourceTable.load(REPO / "config" / "logsources.yaml")
    query = candidate_query(rule_logsources(engine.rules), table, start_at, stop_at)
    day = [(start_at.isoformat(), stop_at.isoformat(), -1)]
    found: dict[str, Any] = {}
    for label, limit in (("two_steps", None), ("documents_with_hits", 10**12)):
        started, events = time.perf_counter(), 0
        for page in read_pages(client, PREFIX, query, slices=day, limit=limit):
            events += len(page)
        seconds = time.perf_counter() - started
        found[label] = {"events": events, "s": round(seconds, 2), "events_per_s": round(events / seconds)}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the month (default 10000000)")
    parser.add_argument("--days", type=int, default=30, help="days (default 30)")
    parser.add_argument("--es-url", help="an Elasticsearch to use; default: a private one")
    parser.add_argument("--keep", action="store_true", help="keep the bench indices (for --reuse)")
    parser.add_argument("--reuse", action="store_true",
                        help="hunt over the month a previous --keep run stored, if any (else generate it)")
    parser.add_argument("--store-only", action="store_true", help="generate and store the month, no hunts")
    parser.add_argument("--windows-month", action="store_true",
                        help="also hunt the Windows rule over the month (half the events are its candidates: long)")
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
    per_day = args.events // args.days
    figures: dict[str, Any] = {"days": args.days}
    keep = args.keep or args.store_only
    try:
        if not (args.reuse and stored_events(client)):
            drop_indices(client)  # a previous run's leftovers would keep their (same-id) events
            figures.update(store_month(client, settings, work, args.days, per_day, args.seed))
        figures["events"] = stored_events(client)
        stored_bytes = client.indices.stats(index=PREFIX, metric="store")["_all"]["primaries"]["store"][
            "size_in_bytes"]
        figures["bytes_per_event"] = round(stored_bytes / figures["events"], 1)
        if args.store_only:
            return 0
        end = START + timedelta(days=args.days)
        # References, in the same run: a plain count of the month, and the detection core alone
        # over 100,000 of the same events from memory.
        started = time.perf_counter()
        client.count(index=PREFIX, query={"range": {"@timestamp": {"gte": START.isoformat(), "lt": end.isoformat()}}})
        figures["count_month_s"] = round(time.perf_counter() - started, 3)
        sample = day_events(random.Random(args.seed), 0, 100_000, False)
        engine, _ = load_rules([ENCODED])
        started = time.perf_counter()
        reference = detect(engine, [sample[i:i + 2000] for i in range(0, len(sample), 2000)], settings,
                           detectors=False)
        core = reference.events / (time.perf_counter() - started)
        figures["core_events_per_s"] = round(core)
        monthly = [("rare_web", SQL_INJECTION), ("often_web", API_ERRORS)]
        for label, rule in monthly + ([("rare_windows", ENCODED)] if args.windows_month else []):
            figures[f"month_{label}"] = hunt_figures(client, settings, rule, START, end, core)
        day_from, day_to = START + timedelta(days=11), START + timedelta(days=12)
        figures["day_rare_windows"] = hunt_figures(client, settings, ENCODED, day_from, day_to, core)
        figures["day_read_windows"] = read_figures(client, settings, ENCODED, day_from, day_to)

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
        if not keep:
            drop_indices(client)
        if stack is not None:
            elasticsearch.stop(stack)
        print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
