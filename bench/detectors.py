"""Benchmark of the stateful stage: detector quality on labelled scenarios, speed and memory.

    .venv/bin/python bench/detectors.py [--hours 48] [--seed 7] [--keys 1000000]

1. Generates a labelled day-scale scenario of the provincial network: normal traffic of
   clients, servers, users, DNS and processes (with diurnal rhythm, typos, benign periodic
   pollers and CDN names), and hidden in it attacks of varying speed — fast, medium and slow
   port scans and host sweeps, password sprays, brute force, beacons with 10–50 % jitter,
   DNS tunnels beside normal DNS, volume spikes on nodes, new processes and new admin
   logon sources. Each attack is a label ``(detector, group, start, end)``.
2. Runs the events through the pure stateful stage exactly as the Flink job feeds it
   (``plan.route`` per event, keyed records per batch of 200 events, the event-time driver)
   and prints precision and recall per detector: an alert is a true positive when a label
   of its detector and group covers its time (plus the detector's window); a label is found
   when at least one alert hits it.
3. Prints events/s of routing alone and of the whole stage (routing + keyed state).
4. Builds state for ``--keys`` distinct keys and prints its size: the JSON snapshots that
   Flink's ValueState holds, and the Python heap of the live pure engine (tracemalloc).

With ``--routing`` it measures instead what ``plan.route`` (correlations and anomaly
detectors, no correlation rules loaded) costs per event, the job's per-event share of the
stateful stage: on the Sysmon process creations of bench/pipeline.py as the file collector
normalizes them (``--events`` of them, hosts and attacks as that bench writes them), and on
the labelled scenario's events, per kind. CPU time, best of ``--passes``, a fresh plan each
pass (the first-seen detectors remember what they sent), ``gc.freeze()`` after setup::

    .venv/bin/python bench/detectors.py --routing --hours 12 [--events 200000] [--passes 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import string
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import ATTACK, BENIGN  # noqa: E402
from bench.pipeline import event as sysmon_event  # noqa: E402
from detectors.anomaly.config import StatefulSettings  # noqa: E402
from detectors.model import Detection  # noqa: E402
from detectors.stateful import StatefulEngine, StatefulPlan, group_pairs, keyed_records  # noqa: E402
from ingest.normalize import Normalizer  # noqa: E402
from ingest.schema import format_timestamp  # noqa: E402
from ingest.settings import CollectorSettings  # noqa: E402

T0 = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
BATCH = 200


@dataclass
class Label:
    detector: str
    group: str
    start: float  # seconds from T0
    end: float
    note: str


class Scenario:
    """Events (time in seconds, event dict) and labels, generated from one seed."""

    def __init__(self, hours: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.hours = hours
        self.span = hours * 3600
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.labels: list[Label] = []
        self.counter = 0
        self.clients = [f"10.20.{i // 200}.{i % 200 + 10}" for i in range(400)]
        self.servers = [f"10.10.{i // 50}.{i % 50 + 10}" for i in range(60)]
        self.external = [f"203.0.{i // 200}.{i % 200 + 1}" for i in range(300)]
        self.nodes = [(f"n-{i:03}", f"a-{i % 30:02}") for i in range(60)]
        self.users = [f"user{i:03}" for i in range(800)]

    # --- helpers --------------------------------------------------------------------

    def _id(self) -> str:
        self.counter += 1
        return f"ev{self.counter:09}"

    def node_of(self, address: str) -> tuple[str, str]:
        return self.nodes[hash(address) % len(self.nodes)]

    def emit(self, t: float, event: dict[str, Any], node: tuple[str, str]) -> None:
        if not 0 <= t < self.span:
            return
        event["@timestamp"] = format_timestamp(T0 + timedelta(seconds=t))
        event.setdefault("event", {})["id"] = self._id()
        event["socflow"] = {"node": {"id": node[0], "agency": node[1]}}
        self.events.append((t, event))

    def conn(self, t: float, src: str, dst: str, port: int) -> None:
        self.emit(t, {"event": {"category": ["network"]}, "source": {"ip": src},
                      "destination": {"ip": dst, "port": port}}, self.node_of(src))

    def auth(self, t: float, user: str, src: str, outcome: str) -> None:
        self.emit(t, {"event": {"category": ["authentication"], "outcome": outcome}, "user": {"name": user},
                      "source": {"ip": src}}, self.node_of(src))

    def dns(self, t: float, src: str, name: str) -> None:
        self.emit(t, {"event": {"category": ["network"]}, "source": {"ip": src}, "dns": {"question": {"name": name}}},
                  self.node_of(src))

    def proc(self, t: float, host: str, exe: str) -> None:
        self.emit(t, {"event": {"category": ["process"]}, "host": {"name": host}, "process": {"executable": exe}},
                  self.node_of(host))

    def diurnal(self, t: float) -> float:
        hour = (t / 3600) % 24
        weekday = int(t // 86400) % 7 < 5
        return (1.0 if 7 <= hour < 18 else 0.25) * (1.0 if weekday else 0.4)

    def poisson_times(self, rate_per_hour: float) -> list[float]:
        times, t = [], 0.0
        while True:
            t += self.rng.expovariate(rate_per_hour / 3600)
            if t >= self.span:
                return times
            if self.rng.random() < self.diurnal(t):
                times.append(t)

    # --- normal traffic -------------------------------------------------------------

    def normal(self) -> None:
        rng = self.rng
        for client in self.clients:
            favourites = rng.sample(self.servers, 6) + rng.sample(self.external, 10)
            for t in self.poisson_times(40):
                dst = rng.choice(favourites)
                port = rng.choice([443, 443, 443, 80, 445, 389, 53]) if dst in self.servers else rng.choice([443, 80])
                self.conn(t, client, dst, port)
                if rng.random() < 0.5:
                    self.conn(t + rng.uniform(0.01, 0.5), client, dst, port)  # keep-alive pair
            for t in self.poisson_times(25):
                self.dns(t, client, self.normal_name())
        for user in self.users:
            src = rng.choice(self.clients)
            for t in self.poisson_times(0.6):
                for k in range(rng.choice([0, 0, 0, 0, 1, 2])):  # typos before success
                    self.auth(t + k * 5, user, src, "failure")
                self.auth(t + 15, user, src, "success")
        for admin in ("administrator", "root", "hung-adm"):
            sources = rng.sample(self.clients, 2)
            for t in self.poisson_times(1.5):
                self.auth(t, admin, rng.choice(sources), "success")
        hosts = [f"srv-{i:03}" for i in range(120)]
        common = ["/usr/sbin/sshd", "/usr/sbin/cron", "/usr/bin/python3", "/usr/sbin/nginx", "/bin/bash",
                  "/usr/bin/systemctl", "/usr/bin/rsync", "/usr/bin/java"]
        for host in hosts:
            kit = rng.sample(common, 5)
            for t in self.poisson_times(4):
                self.proc(t, host, rng.choice(kit))
        # Benign periodic pollers (monitoring, NTP): regular by design, a known false-positive
        # source of beacon detection; no label.
        for poller in range(3):
            src, dst, period = self.rng.choice(self.servers), self.rng.choice(self.servers), [60, 300, 120][poller]
            t = rng.uniform(0, period)
            while t < self.span:
                self.conn(t, src, dst, 5666)
                t += period * rng.uniform(0.98, 1.02)

    def normal_name(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return rng.choice(["www", "dichvucong", "mail", "vpdt", "portal", "api"]) + "." + rng.choice(
                ["hoagiang.gov.vn", "gov.vn", "chinhphu.vn", "hoagiang.edu.vn"])
        if roll < 0.8:
            return rng.choice(["www.google.com", "update.microsoft.com", "ocsp.digicert.com", "zalo.me",
                               "login.microsoftonline.com", "fonts.gstatic.com"])
        # CDN and tracking names: random-looking but short labels.
        label = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(8, 16)))
        return f"{label}.{rng.choice(['cloudfront.net', 'akamaized.net', 'fbcdn.net'])}"

    # --- attacks ---------------------------------------------------------------------

    def attacks(self) -> None:
        rng = self.rng
        day2 = 86400 * (1 if self.hours <= 36 else 1.3)
        attackers = iter(f"10.66.{i // 200}.{i % 200 + 1}" for i in range(1000))
        # Port scans: ports per second from fast to very slow.
        for index, (ports, duration) in enumerate([(200, 20), (100, 300), (60, 1200), (45, 1800), (50, 3000),
                                                   (40, 7200)]):
            src, dst, start = next(attackers), rng.choice(self.servers), day2 * 0.3 + index * 7000
            chosen = rng.sample(range(1, 10000), ports)
            for k, port in enumerate(chosen):
                self.conn(start + duration * k / ports + rng.uniform(0, 1), src, dst, port)
            self.labels.append(Label("portscan", src, start, start + duration, f"{ports} ports in {duration}s"))
        # Host sweeps on SMB / RDP across servers.
        for index, (hosts, duration) in enumerate([(50, 30), (40, 600), (60, 1500), (30, 5400)]):
            src, start = next(attackers), day2 * 0.5 + index * 6000
            for k, dst in enumerate(rng.sample(self.servers, min(hosts, len(self.servers)))):
                self.conn(start + duration * k / hosts, src, dst, rng.choice([445, 3389]))
            self.labels.append(Label("hostscan", src, start, start + duration, f"{hosts} hosts in {duration}s"))
        # Password sprays: accounts over time.
        for index, (accounts, duration) in enumerate([(30, 60), (15, 900), (12, 1700), (40, 6 * 3600)]):
            src, start = next(attackers), day2 * 0.2 + index * 9000
            for k, user in enumerate(rng.sample(self.users, accounts)):
                self.auth(start + duration * k / accounts, user, src, "failure")
            self.labels.append(Label("spray", src, start, start + duration, f"{accounts} accounts in {duration}s"))
        # Brute force on one account, two of them succeed in the end.
        for index, (tries, duration, success) in enumerate([(40, 120, True), (15, 500, False), (12, 580, True)]):
            src, user, start = next(attackers), rng.choice(self.users), day2 * 0.6 + index * 5000
            for k in range(tries):
                self.auth(start + duration * k / tries, user, src, "failure")
            if success:
                self.auth(start + duration + 10, user, src, "success")
            self.labels.append(Label("bruteforce", user, start, start + duration + 10, f"{tries} tries"))
        # Beacons with jitter.
        for index, (period, jitter) in enumerate([(60, 0.1), (300, 0.2), (900, 0.15), (120, 0.3), (600, 0.5)]):
            src, dst = rng.choice(self.clients), f"198.51.100.{index + 10}"
            start, t = day2 * 0.1 + index * 3000, 0.0
            t = start
            while t < start + 8 * 3600:
                self.conn(t, src, dst, 443)
                t += period * rng.uniform(1 - jitter, 1 + jitter)
            self.labels.append(Label("beacon", f"{src}>{dst}:443", start, start + 8 * 3600,
                                     f"every {period}s ±{int(jitter * 100)}%"))
        # DNS tunnels: long random labels, from fast to trickling.
        for index, (queries, duration) in enumerate([(400, 600), (60, 600), (15, 900)]):
            src, start = rng.choice(self.clients), day2 * 0.4 + index * 4000
            domain = f"sync-cdn{index}.net"
            alphabet = string.ascii_lowercase + string.digits
            for k in range(queries):
                payload = "".join(rng.choice(alphabet) for _ in range(rng.randint(30, 60)))
                self.dns(start + duration * k / queries, src, f"{payload}.{domain}")
            self.labels.append(Label("dns_tunnel", domain, start, start + duration, f"{queries} queries"))
        # Volume spikes on a node (a flood of events from its hosts).
        for index, factor in enumerate([20, 8, 5]):
            node = self.nodes[index * 7]
            start = day2 + 3600 * (9 + index * 3)
            for _ in range(int(factor * 150)):
                self.emit(start + rng.uniform(0, 600), {"event": {"category": ["network"]}}, node)
            self.labels.append(Label("volume_node", node[0], start, start + 900, f"x{factor} for 10 min"))
            self.labels.append(Label("volume_agency", node[1], start, start + 900, f"x{factor} on the node"))
        # First seen: a new process on a host, an admin from a new source (after learning).
        for index in range(5):
            host, start = f"srv-{index * 11:03}", day2 + 4000 * index
            self.proc(start, host, f"/tmp/.cache/kworker{index}")
            self.labels.append(Label("new_process", host, start, start + 1, "dropped binary"))
        for index, admin in enumerate(("administrator", "root", "hung-adm")):
            start = day2 + 5000 * index + 1000
            self.auth(start, admin, next(attackers), "success")
            self.labels.append(Label("new_admin_source", admin, start, start + 1, "new source"))


def alert_group(detection: Detection) -> tuple[str, str]:
    group = detection.group
    detector = str(group["detector"])
    if detector in ("portscan", "hostscan", "spray"):
        return detector, str(group["source.ip"])
    if detector in ("bruteforce", "new_admin_source"):
        return detector, str(group["user.name"])
    if detector == "beacon":
        return detector, f"{group['source.ip']}>{group['destination']}"
    if detector == "dns_tunnel":
        return detector, str(group["dns.registered_domain"])
    if detector == "volume_node":
        return detector, str(group["socflow.node.id"])
    if detector == "volume_agency":
        return detector, str(group["socflow.node.agency"])
    return detector, str(group["host.name"])


# How long after a label's end an alert still counts for it (the detector's window).
SLACK = {"portscan": 1800, "hostscan": 1800, "spray": 1800, "bruteforce": 600, "beacon": 3600,
         "dns_tunnel": 600, "volume_node": 600, "volume_agency": 600, "new_process": 60, "new_admin_source": 60}


def score(labels: list[Label], detections: list[Detection]) -> dict[str, tuple[int, int, int, int]]:
    """detector -> (alerts, true-positive alerts, labels, labels found)."""
    by_detector: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_detector[label.detector].append(label)
    found: set[int] = set()
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for detection in detections:
        detector, group = alert_group(detection)
        moment = (datetime.fromisoformat(detection.timestamp.replace("Z", "+00:00")) - T0).total_seconds()
        stats[detector][0] += 1
        for label in by_detector.get(detector, ()):
            if label.group == group and label.start - 60 <= moment <= label.end + SLACK[detector]:
                stats[detector][1] += 1
                found.add(id(label))
                break
    result = {}
    for detector in sorted(set(stats) | set(by_detector)):
        total = by_detector.get(detector, [])
        result[detector] = (stats[detector][0], stats[detector][1], len(total),
                            sum(1 for label in total if id(label) in found))
    return result


def false_positives(labels: list[Label], detections: list[Detection]) -> dict[str, list[tuple[str, int]]]:
    """Alerts that hit no label, counted per detector and group (most frequent first)."""
    wanted = {(label.detector, label.group) for label in labels}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for detection in detections:
        detector, group = alert_group(detection)
        if (detector, group) not in wanted:
            counts[detector][group] += 1
    return {detector: sorted(groups.items(), key=lambda kv: -kv[1]) for detector, groups in sorted(counts.items())}


def run_stage(plan: StatefulPlan, events: list[dict[str, Any]]) -> tuple[list[Detection], float, float, StatefulEngine]:
    """Route per event, group per batch, feed keyed records: what the Flink job does."""
    started = time.perf_counter()
    records: list[str] = []
    for start in range(0, len(events), BATCH):
        pairs = []
        for event in events[start : start + BATCH]:
            pairs.extend(plan.route(event, ()))
        records.extend(keyed_records(group_pairs(pairs)))
    routed = time.perf_counter() - started
    engine = StatefulEngine(plan)
    out: list[Detection] = []
    for record in records:
        out.extend(engine.process_record(record))
    out.extend(engine.flush())
    return out, routed, time.perf_counter() - started, engine


def memory_for_keys(plan: StatefulPlan, keys: int) -> tuple[int, int, int]:
    """(distinct keys, JSON snapshot bytes, Python heap bytes) for ``keys`` keys of mixed kinds."""
    gc.collect()
    tracemalloc.start()
    engine = StatefulEngine(plan)
    base = int(T0.timestamp() * 1000)
    kinds = 4
    for i in range(keys // kinds):
        t = base + i  # one ms apart: all keys stay alive (no window expires meanwhile)
        a, b = divmod(i, 60000)
        src = f"10.{a // 250}.{a % 250}.{b % 250}"
        engine.driver.submit(f"0|a|beacon|{src}>198.51.{b // 250 % 250}.{b % 250}:443", {"t": t, "id": f"e{i:010}"})
        engine.driver.submit(f"0|a|portscan|{src}-{b}", {"t": t, "id": f"e{i:010}", "x": 443})
        engine.driver.submit(f"0|a|dns_tunnel|d{i}.example", {"t": t, "id": f"e{i:010}", "x": 0, "h": f"{i:012x}"})
        engine.driver.submit(f"0|a|new_process|host{i}", {"t": t, "id": f"e{i:010}", "x": "/usr/bin/x"})
    engine.driver.advance(base + keys // kinds + 1)  # apply every item: live states, timers, horizons
    _current, heap = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    snapshot_bytes = sum(len(plan.dumps(key, state)) + len(key) for key, state in engine.driver.states.items())
    return len(engine.driver.states), snapshot_bytes, heap


def sysmon_events(count: int) -> list[dict[str, Any]]:
    """bench/pipeline.py's events (one attack in 1,000), normalized by the collector's
    normalizer as the job receives them (``event.id``, ``socflow.node``). Event time moves
    50 µs per event (20,000/s); that bench stamps a whole 100 ms slice with one time."""
    normalizer = Normalizer.from_settings(CollectorSettings(), "bench")
    written = T0.timestamp()
    out = []
    for number in range(count):
        if number % 1000 == 999:
            host, fields = f"bench-{number:09d}.hoagiang.gov.vn", ATTACK
        else:
            host, fields = f"ag-{number % 270:03d}-pc{number % 40:03d}", BENIGN[number % len(BENIGN)]
        raw = sysmon_event(number, host, *fields, written=written + number / 20_000)
        out.append(normalizer.finish(raw, source_id="bench", position=number, input_name="bench.jsonl"))
    return out


def scenario_kind(event: dict[str, Any]) -> str:
    if "process" in event:
        return "process"
    if "dns" in event:
        return "dns"
    if "user" in event:
        return "auth"
    return "flow" if "destination" in event else "volume only"


def route_cost(settings: StatefulSettings, events: list[dict[str, Any]], passes: int) -> tuple[float, float, int]:
    """(best, median) CPU µs per event of ``plan.route`` and the pairs it returned per pass."""
    times, pairs = [], 0
    for _ in range(passes):
        route = StatefulPlan.build(settings).route
        pairs = 0
        started = time.process_time()
        for item in events:
            pairs += len(route(item, ()))
        times.append(time.process_time() - started)
    return min(times) / len(events) * 1e6, statistics.median(times) / len(events) * 1e6, pairs


def routing(args: argparse.Namespace) -> int:
    settings = StatefulSettings.load(args.config)
    sets = {"sysmon (bench/pipeline.py)": sysmon_events(args.events)}
    scenario = Scenario(args.hours, args.seed)
    scenario.normal()
    scenario.attacks()
    scenario.events.sort(key=lambda pair: pair[0])
    sets["scenario, all"] = [item for _, item in scenario.events]
    for item in sets["scenario, all"]:
        sets.setdefault(f"scenario, {scenario_kind(item)}", []).append(item)
    gc.collect()
    gc.freeze()  # the events are long-lived, as the job's loaded plan and rules are
    print(f"plan.route, CPU µs/event, best (median) of {args.passes} passes:")
    results = {}
    for name, events in sets.items():
        best, median, pairs = route_cost(settings, events, args.passes)
        results[name] = round(best, 2)
        print(f"  {name:<28}{len(events):>10,} events {best:7.2f} ({median:.2f}) µs  "
              f"{pairs / len(events):.2f} pairs/event")
    print(json.dumps({"routing_us_per_event": results}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=48, help="Simulated time span.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keys", type=int, default=1_000_000, help="Distinct keys for the memory measurement.")
    parser.add_argument("--config", default=str(ROOT / "config" / "detectors.yaml"))
    parser.add_argument("--routing", action="store_true", help="Measure per-event routing cost only.")
    parser.add_argument("--events", type=int, default=200_000, help="Sysmon events for --routing.")
    parser.add_argument("--passes", type=int, default=5, help="Passes per --routing figure (the best counts).")
    args = parser.parse_args(argv)
    if args.routing:
        return routing(args)

    plan = StatefulPlan.build(StatefulSettings.load(args.config))
    scenario = Scenario(args.hours, args.seed)
    scenario.normal()
    scenario.attacks()
    # Attacks placed beyond a short --hours run are not in the data: do not score them.
    scenario.labels = [label for label in scenario.labels if label.start < scenario.span]
    scenario.events.sort(key=lambda pair: pair[0])
    # Mild disorder, as collectors deliver it: swap neighbours within two seconds.
    events = [event for _, event in scenario.events]
    for index in range(0, len(events) - 1, 7):
        if scenario.events[index + 1][0] - scenario.events[index][0] < 2:
            events[index], events[index + 1] = events[index + 1], events[index]
    print(f"scenario: {len(events):,} events over {args.hours:g} h, {len(scenario.labels)} labelled attacks "
          f"(seed {args.seed})")

    detections, routed, total, engine = run_stage(plan, events)
    print(f"\n{'detector':<18}{'alerts':>7}{'TP':>5}{'precision':>11}{'labels':>8}{'found':>7}{'recall':>8}")
    for detector, (alerts, tp, labels, hit) in score(scenario.labels, detections).items():
        precision = f"{tp / alerts:.2f}" if alerts else "-"
        recall = f"{hit / labels:.2f}" if labels else "-"
        print(f"{detector:<18}{alerts:>7}{tp:>5}{precision:>11}{labels:>8}{hit:>7}{recall:>8}")
    missed = [label for label in scenario.labels
              if not any(alert_group(d) == (label.detector, label.group) for d in detections)]
    for label in missed:
        print(f"  missed: {label.detector} {label.note}")
    for detector, groups in false_positives(scenario.labels, detections).items():
        shown = ", ".join(f"{group} x{count}" for group, count in groups[:4])
        print(f"  false positives of {detector}: {shown}")
    stats = engine.stats
    print(f"\nspeed: routing {len(events) / routed:,.0f} events/s; stage (routing + keyed state) "
          f"{len(events) / total:,.0f} events/s; {stats.items:,} keyed items, {stats.late} late "
          f"({stats.late_dropped} dropped), {stats.timers:,} timers")

    keys, snapshot_bytes, heap = memory_for_keys(plan, args.keys)
    limit = 1 << 30
    print(f"\nmemory for {keys:,} distinct keys: snapshots (Flink ValueState) {snapshot_bytes / 2**20:,.0f} MiB "
          f"({snapshot_bytes / keys:.0f} B/key); pure engine heap {heap / 2**20:,.0f} MiB ({heap / keys:.0f} B/key); "
          f"{'under' if max(snapshot_bytes, heap) < limit else 'OVER'} 1 GiB")
    print(json.dumps({"events": len(events), "stage_events_per_s": round(len(events) / total),
                      "routing_events_per_s": round(len(events) / routed), "keys": keys,
                      "snapshot_bytes": snapshot_bytes, "heap_bytes": heap}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
