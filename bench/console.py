"""Console API latency: the queue, an alert page and a triage action, 100,000 alerts, 20 analysts.

Indexes ``--alerts`` generated alerts (the indexer's documents, rules of every level on nodes of
the inventory, spread over 30 days) under a private alias, starts ``socflow serve`` in its own
process on loopback over them, and runs ``--clients`` concurrent clients (threads with keep-alive
HTTP connections, as many browsers would hold) for ``--rounds`` bounded rounds each. A round is:

- ``queue``: ``GET /api/alerts`` (50 rows, risk order; every third request with a filter and
  every fifth on a later page through its ``search_after`` cursor);
- ``alert``: ``GET /api/alerts/{id}`` (the alert, its rule and node, entity events and related
  alerts: four Elasticsearch requests);
- ``action``: ``POST /api/alerts/{id}/comments`` (read, conditional write, audit record).

Two loads, one after the other: *analysts* (``--think``, default 1 s: each client waits a random
time, exponential with that mean, before each request, as a person reading the page does; an
analyst clicking every second is a fast one) and *saturated* (no wait at all: 20 scripts
hammering the API back to back, the worst case, far above what 20 people send).

Printed for each: p50/p99/max per request kind, requests per second, and as the reference
measured in the same run, the latency of the queue's own Elasticsearch search sent straight to
Elasticsearch by the same 20 clients at the same pace (the console's overhead is the
difference). Everything the bench made is deleted at the end.

    PYTHONPATH=. /work/main/.venv/bin/python bench/console.py            # 100,000 alerts, 20 clients
    PYTHONPATH=. /work/main/.venv/bin/python bench/console.py --alerts 10000 --rounds 5   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from elasticsearch import Elasticsearch, helpers  # noqa: E402

from alerts.indexer import install_template  # noqa: E402
from alerts.model import index_name, to_document  # noqa: E402
from alerts.settings import load_settings  # noqa: E402
from alerts.triage.queue import QueueFilter, search_body  # noqa: E402
from deploy import elasticsearch  # noqa: E402
from deploy.lease import shared_service  # noqa: E402
from detectors.model import Detection, RuleInfo  # noqa: E402
from ingest.assets import AssetInventory  # noqa: E402
from ingest.schema import format_timestamp  # noqa: E402

LEVELS = ("informational", "low", "medium", "high", "critical")
TAGS = (("attack.initial-access", "attack.t1190"), ("attack.execution", "attack.t1059.001"),
        ("attack.credential-access", "attack.t1110.003"), ("attack.discovery", "attack.t1046"),
        ("attack.command-and-control", "attack.t1071"))
FILTERS = ({"level": "critical"}, {"status": "open", "security_level": "4,5"}, {"text": "host-17"},
           {"technique": "T1059"}, {"agency": "ag-cds"})


def generate(count: int, seed: int = 15) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(index suffix date, id, document) of ``count`` alerts over 30 days."""
    rng = random.Random(seed)
    inventory = AssetInventory.load(ROOT / "config" / "assets.yaml")
    nodes = [node.as_event_field() for node in inventory.nodes]
    rules = [RuleInfo(id=f"bench-rule-{n}", title=f"Bench rule {n}", level=LEVELS[n % 5], tags=TAGS[n % 5],
                      description="generated for bench/console.py") for n in range(40)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for number in range(count):
        moment = start + timedelta(seconds=rng.randint(0, 30 * 86_400))
        event = {"@timestamp": format_timestamp(moment), "event": {"id": f"bench-{number}", "dataset": "bench"},
                 "host": {"name": f"host-{rng.randint(0, 999)}"}, "user": {"name": f"user.{rng.randint(0, 499)}"},
                 "source": {"ip": f"10.{rng.randint(0, 60)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"},
                 "url": {"original": f"/q?id={number}&x={'A' * rng.randint(0, 200)}"},
                 "socflow": {"node": rng.choice(nodes), "logsource": {"category": "webserver"}}}
        detection = Detection.for_events(rules[rng.randrange(len(rules))], [event])
        yield format_timestamp(moment), detection.id, to_document(detection)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def run_clients(clients: int, rounds: int, work: Callable[[int, random.Random], dict[str, float]],
                ) -> tuple[dict[str, list[float]], float, list[str]]:
    """``clients`` threads doing ``rounds`` rounds each; latencies (ms) by kind, wall seconds, errors."""
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(number: int) -> None:
        rng = random.Random(number)
        barrier.wait()
        for _ in range(rounds):
            try:
                measured = work(number, rng)
            except Exception as error:  # noqa: BLE001 - a bench counts failures, it does not stop
                with lock:
                    errors.append(repr(error)[:200])
                continue
            with lock:
                for kind, value in measured.items():
                    latencies.setdefault(kind, []).append(value)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts in the index (default 100,000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--rounds", type=int, default=25, help="rounds per client (default 25)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="analysts' mean wait before each request, seconds (default 1; 0: saturated only)")
    parser.add_argument("--es-url", help="Elasticsearch URL (default: start/reuse the test instance)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if args.es_url:
            url = args.es_url
        else:  # the test instance, shared with test sessions through their lease (stopped by the last user)
            test_stack = load_settings().stack.for_tests()
            url = stack.enter_context(shared_service(test_stack, "elasticsearch", elasticsearch.status,
                                                     elasticsearch.start, elasticsearch.stop,
                                                     reset=elasticsearch.remove_data)).url
        return bench(args, url)


def bench(args: argparse.Namespace, url: str) -> int:
    client = Elasticsearch(url, request_timeout=60)
    prefix = f"bench-console-{uuid.uuid4().hex[:8]}"
    work_dir = Path(tempfile.mkdtemp(prefix="socflow-bench-console-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        install_template(client, prefix)
        started = time.perf_counter()
        actions = ({"_index": index_name(prefix, stamp), "_id": alert_id, "_source": document}
                   for stamp, alert_id, document in generate(args.alerts))
        indexed, _ = helpers.bulk(client.options(request_timeout=120), actions, chunk_size=2000)
        client.indices.refresh(index=prefix)
        print(f"indexed {indexed:,} alerts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        sample = {"function_score": {"random_score": {"seed": 1, "field": "_seq_no"}}}
        ids = [hit["_id"] for hit in client.search(index=prefix, size=2000, source=False, query=sample)["hits"]["hits"]]

        from alerts.users.store import UserStore

        run_settings = load_settings(data_dir=work_dir, elasticsearch={"url": url, "index_prefix": prefix},
                                     console={"audit_index": f"{prefix}_audit"},
                                     triage={"incidents_index": f"{prefix}_incidents",
                                             "filters_index": f"{prefix}_filters",
                                             "events_alias": f"{prefix}_events"})
        users = UserStore(run_settings.console_dir / "users.json")
        users.add("bench", "analyst", "bench password long enough", now=datetime.now(UTC))
        _, token = users.new_token("bench", now=datetime.now(UTC))
        port = 18765 + random.randint(0, 500)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SOCFLOW_ELASTICSEARCH__URL": url,
               "SOCFLOW_ELASTICSEARCH__INDEX_PREFIX": prefix, "SOCFLOW_CONSOLE__AUDIT_INDEX": f"{prefix}_audit",
               "SOCFLOW_TRIAGE__INCIDENTS_INDEX": f"{prefix}_incidents",
               "SOCFLOW_TRIAGE__FILTERS_INDEX": f"{prefix}_filters", "SOCFLOW_TRIAGE__EVENTS_ALIAS": f"{prefix}_events"}
        log = (work_dir / "serve.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "alerts.cli", "--data-dir", str(work_dir), "serve",
                                   "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/alerts?size=1", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the console did not start")
            time.sleep(0.3)

        sessions = [httpx.Client(base_url=base, headers=headers, timeout=30) for _ in range(args.clients)]
        cursors: dict[int, str | None] = {}

        think = 0.0

        def pause(rng: random.Random) -> None:
            if think > 0:
                time.sleep(rng.expovariate(1 / think))

        def console_round(number: int, rng: random.Random) -> dict[str, float]:
            http = sessions[number]
            timings: dict[str, float] = {}
            pause(rng)
            params: dict[str, Any] = {"size": 50, "order": "risk"}
            if rng.random() < 1 / 3:
                params.update(rng.choice(FILTERS))
            if rng.random() < 0.2 and cursors.get(number):
                params["after"] = cursors[number]
            begin = time.perf_counter()
            answer = http.get("/api/alerts", params=params)
            timings["queue"] = (time.perf_counter() - begin) * 1000
            answer.raise_for_status()
            cursors[number] = answer.json()["cursor"]
            alert_id = rng.choice(ids)
            pause(rng)
            begin = time.perf_counter()
            http.get(f"/api/alerts/{alert_id}").raise_for_status()
            timings["alert"] = (time.perf_counter() - begin) * 1000
            pause(rng)
            begin = time.perf_counter()
            http.post(f"/api/alerts/{alert_id}/comments", json={"text": "bench"}).raise_for_status()
            timings["action"] = (time.perf_counter() - begin) * 1000
            return timings

        run_clients(args.clients, 2, console_round)  # warm-up: caches, connections, JIT of the JVM
        body = search_body(QueueFilter(order="risk"), datetime.now(UTC), size=50)
        direct = [Elasticsearch(url, request_timeout=30) for _ in range(args.clients)]

        def es_round(number: int, rng: random.Random) -> dict[str, float]:
            pause(rng)
            begin = time.perf_counter()
            direct[number].search(index=prefix, **body)
            return {"es_queue": (time.perf_counter() - begin) * 1000}

        results = {}
        for load, wait in (("analysts", args.think), ("saturated", 0.0)):
            if load == "analysts" and wait <= 0:
                continue
            think = wait
            latencies, wall, errors = run_clients(args.clients, args.rounds, console_round)
            reference, _, ref_errors = run_clients(args.clients, args.rounds, es_round)
            latencies.update(reference)
            figures = {kind: {"n": len(values), "p50_ms": round(percentile(values, 0.5), 1),
                              "p99_ms": round(percentile(values, 0.99), 1), "max_ms": round(max(values), 1)}
                       for kind, values in latencies.items()}
            results[load] = {
                "think_s": wait, "wall_s": round(wall, 1),
                "requests_per_s": round(sum(len(v) for k, v in latencies.items() if k != "es_queue") / wall, 1),
                "errors": len(errors) + len(ref_errors), "first_error": errors[0] if errors else "",
                "figures": figures,
                "queue_p99_over_es_p99": round(figures["queue"]["p99_ms"] / figures["es_queue"]["p99_ms"], 2)}
        result = {"alerts": indexed, "clients": args.clients, "rounds": args.rounds, "cpus": os.cpu_count(),
                  "loads": results}
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            for load, figures_of in results.items():
                pace = f"mean wait {figures_of['think_s']} s" if figures_of["think_s"] else "no wait"
                print(f"{load} ({pace}): {indexed:,} alerts, {args.clients} clients x {args.rounds} rounds, "
                      f"{figures_of['wall_s']} s, {figures_of['requests_per_s']} requests/s, "
                      f"{figures_of['errors']} errors")
                for kind in ("queue", "alert", "action", "es_queue"):
                    fig = figures_of["figures"].get(kind)
                    if fig:
                        print(f"  {kind:9} n={fig['n']:5}  p50 {fig['p50_ms']:7.1f} ms  p99 {fig['p99_ms']:7.1f} ms  "
                              f"max {fig['max_ms']:7.1f} ms")
                print(f"  queue p99 / Elasticsearch's own p99 for the same search: "
                      f"{figures_of['queue_p99_over_es_p99']}")
                if figures_of["first_error"]:
                    print(f"  first error: {figures_of['first_error']}")
        for http in sessions:
            http.close()
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        for name in client.indices.get(index=f"{prefix}*", allow_no_indices=True):
            client.indices.delete(index=name)
        with contextlib.suppress(Exception):  # cleanup only
            client.indices.delete_index_template(name=prefix)
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
