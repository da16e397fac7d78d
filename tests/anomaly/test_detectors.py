"""Anomaly detectors on deterministic sequences, without Flink: positives, negatives, event
time (out of order), snapshots and state expiry."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.anomaly.config import StatefulSettings
from detectors.anomaly.detectors import entropy, registered_domain
from detectors.stateful import StatefulEngine, StatefulPlan
from ingest.schema import format_timestamp

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def conn(i: str, s: float, src: str, dst: str, port: int) -> dict[str, Any]:
    return {"@timestamp": at(s), "event": {"id": i}, "source": {"ip": src}, "destination": {"ip": dst, "port": port}}


def auth(i: str, s: float, user: str, src: str, outcome: str) -> dict[str, Any]:
    return {"@timestamp": at(s), "event": {"id": i, "category": ["authentication"], "outcome": outcome},
            "user": {"name": user}, "source": {"ip": src}}


def dns(i: str, s: float, name: str) -> dict[str, Any]:
    return {"@timestamp": at(s), "event": {"id": i}, "dns": {"question": {"name": name}}}


def run(events: list[dict[str, Any]], settings: StatefulSettings | None = None) -> list[Any]:
    engine = StatefulEngine(StatefulPlan.build(settings or StatefulSettings.load("config/detectors.yaml")))
    out = []
    for event in events:
        out.extend(engine.process(event))
    out.extend(engine.flush())
    return out


def names(out: list[Any]) -> list[str]:
    return [d.group["detector"] for d in out]


def test_port_scan_fast_and_slow_but_not_normal_clients() -> None:
    fast = [conn(f"f{p}", p * 0.5, "10.1.1.1", "10.2.2.2", 1000 + p) for p in range(30)]
    slow = [conn(f"s{p}", p * 40, "10.1.1.3", "10.2.2.2", 2000 + p) for p in range(45)]
    normal = [conn(f"n{i}", i * 7, "10.1.1.2", f"10.2.2.{i % 9}", random.Random(i).choice([80, 443, 53]))
              for i in range(300)]
    out = [d for d in run(fast + slow + normal) if d.group["detector"] == "portscan"]
    assert sorted(d.group["source.ip"] for d in out) == ["10.1.1.1", "10.1.1.3"]
    assert {d.group["window_s"] for d in out} == {60, 3600}


def test_host_sweep_counts_internal_hosts_only() -> None:
    sweep = [conn(f"h{i}", i, "10.1.1.9", f"10.3.0.{i}", 445) for i in range(30)]
    web = [conn(f"w{i}", i, "10.1.1.8", f"93.184.{i}.1", 443) for i in range(30)]
    out = [d for d in run(sweep + web) if d.group["detector"] == "hostscan"]
    assert [d.group["source.ip"] for d in out] == ["10.1.1.9"]


def test_brute_force_then_success_and_spray() -> None:
    brute = [auth(f"b{i}", i * 5, "alice", "203.0.113.9", "failure") for i in range(12)]
    brute.append(auth("b-ok", 70, "alice", "203.0.113.9", "success"))
    spray = [auth(f"s{i}", 100 + i * 30, f"user{i}", "203.0.113.50", "failure") for i in range(10)]
    typo = [auth("t1", 5, "bob", "10.0.0.3", "failure"), auth("t2", 9, "bob", "10.0.0.3", "success")]
    out = run(brute + spray + typo)
    titles = sorted((d.group["detector"], d.rule.title) for d in out if d.group["detector"] in ("bruteforce", "spray"))
    assert titles == [
        ("bruteforce", "Brute force followed by a successful logon"),
        ("bruteforce", "Brute force on one account"),
        ("spray", "Password spraying from one source"),
    ]
    success = next(d for d in out if d.rule.title.startswith("Brute force followed"))
    assert success.event_ids[-1] == "b-ok" and success.rule.level == "high"


def test_beacon_with_jitter_is_found_random_traffic_is_not() -> None:
    rng = random.Random(3)
    beacon, t = [], 0.0
    for i in range(20):
        t += 300 * rng.uniform(0.85, 1.15)
        beacon.append(conn(f"c{i}", t, "10.4.4.4", "198.51.100.7", 443))
    human, t = [], 0.0
    for i in range(40):
        t += rng.expovariate(1 / 200)
        human.append(conn(f"h{i}", t, "10.4.4.5", "198.51.100.8", 443))
    out = [d for d in run(sorted(beacon + human, key=lambda e: e["@timestamp"])) if d.group["detector"] == "beacon"]
    assert [d.group["source.ip"] for d in out] == ["10.4.4.4"]
    assert 250 < out[0].group["interval_s"] < 350


def test_dns_tunnel_beside_normal_dns() -> None:
    rng = random.Random(5)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    tunnel = [dns(f"t{i}", i * 2, "".join(rng.choice(alphabet) for _ in range(40)) + ".exfil.example")
              for i in range(30)]
    normal = [dns(f"n{i}", i, f"{rng.choice(['www', 'mail', 'api', 'cdn'])}.gov.vn") for i in range(200)]
    out = [d for d in run(tunnel + normal) if d.group["detector"] == "dns_tunnel"]
    assert [d.group["dns.registered_domain"] for d in out] == ["exfil.example"]
    assert registered_domain("a.b.portal.gov.vn") == ("portal.gov.vn", "a.b")
    assert entropy("aaaa") == 0 and entropy("abcd") == 2


def test_volume_spike_against_seasonal_baseline() -> None:
    rng = random.Random(9)
    events = []
    for bucket in range(3 * 288):  # three days of 5-minute buckets
        hour = (bucket // 12) % 24
        rate = 100 if 8 <= hour < 18 else 20
        if bucket == 2 * 288 + 150:
            rate = 1000  # the spike
        for n in range(rng.randint(int(rate * 0.9), int(rate * 1.1))):
            events.append({"@timestamp": at(bucket * 300 + n * 300 / (rate * 1.2)), "event": {"id": f"v{bucket}-{n}"},
                           "socflow": {"node": {"id": "n-portal", "agency": "a-1"}}})
    out = [d for d in run(events) if d.group["detector"].startswith("volume")]
    spike_end = format_timestamp(T0 + timedelta(seconds=(2 * 288 + 151) * 300 - 0.001))
    assert sorted((d.group["detector"], d.timestamp) for d in out) == [
        ("volume_agency", spike_end),
        ("volume_node", spike_end),
    ]


def test_volume_sharded_over_many_nodes_gives_the_per_node_alerts() -> None:
    """Volume groups share a few shard keys (detectors.anomaly.sharded); the alerts must be those
    of one key per node: same ids, times and events."""
    rng = random.Random(4)
    events = []
    for bucket in range(2 * 288):  # two days of 5-minute buckets, 8 nodes in 3 agencies
        for node in range(8):
            rate = 600 if (bucket, node) in {(400, 3), (500, 7), (520, 7)} else rng.randint(6, 10)
            events += [{"@timestamp": at(bucket * 300 + n * 300 / (rate * 1.2)),
                        "event": {"id": f"v{bucket}-{node}-{n}"},
                        "socflow": {"node": {"id": f"n-{node}", "agency": f"a-{node % 3}"}}} for n in range(rate)]
    events.sort(key=lambda e: e["@timestamp"])
    sharded = StatefulPlan.build(StatefulSettings.load("config/detectors.yaml"))
    keys = {key for event in events[:5000] for key, _ in sharded.route(event, [])}
    assert keys and all(key.split("|")[3].startswith("#") for key in keys)
    plain = StatefulPlan.build(StatefulSettings.load("config/detectors.yaml"))
    plain.anomalies._sharded.clear()  # one key per node and agency, as before sharding

    def alerts(plan: StatefulPlan) -> list[tuple[str, str, tuple[str, ...], str]]:
        engine = StatefulEngine(plan)
        out = [d for event in events for d in engine.process(event)] + engine.flush()
        return sorted((d.id, d.timestamp, tuple(d.event_ids), json.dumps(d.group, sort_keys=True)) for d in out)

    expected = alerts(plain)
    assert {json.loads(group)["socflow.node.id"] for *_, group in expected if "socflow.node.id" in group} >= {
        "n-3", "n-7"}
    assert alerts(sharded) == expected


def test_first_seen_after_learning() -> None:
    day = 86400
    events = [{"@timestamp": at(i * 3600), "event": {"id": f"p{i}"}, "host": {"name": "srv1"},
               "process": {"executable": f"/usr/bin/{['cron', 'sshd', 'nginx'][i % 3]}"}} for i in range(48)]
    events.append({"@timestamp": at(2 * day + 10), "event": {"id": "new"}, "host": {"name": "srv1"},
                   "process": {"executable": "/tmp/.x/miner"}})
    events += [auth(f"adm{i}", i * 3600, "administrator", "10.0.0.10", "success") for i in range(30)]
    events.append(auth("adm-new", 2 * day, "administrator", "10.9.9.9", "success"))
    events.append(auth("user-new", 2 * day, "alice", "10.9.9.9", "success"))
    out = run(sorted(events, key=lambda e: e["@timestamp"]))
    found = sorted((d.group["detector"], d.event_ids[0]) for d in out
                   if d.group["detector"] in ("new_process", "new_admin_source"))
    assert found == [("new_admin_source", "adm-new"), ("new_process", "new")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_first_seen_sends_repeats_sparingly_with_the_same_alerts(seed: int) -> None:
    """Repeated (host, process) sightings reach keyed state at most once per refresh_s, and the
    alerts (which events, which values) are those of sending every sighting."""
    rng = random.Random(seed)
    day = 86400
    events = []
    for window, (start, tools) in enumerate([(0, 30), (1.5 * day, 36), (2.5 * day, 40)]):
        # half-hour bursts: learning on day one, then new tools among the known ones
        events += [{"@timestamp": at(start + rng.uniform(0, 1800)), "event": {"id": f"p{window}-{i}"},
                    "host": {"name": f"pc{rng.randrange(10)}"},
                    "process": {"executable": f"c:\\tools\\t{rng.randrange(tools)}.exe"}} for i in range(2000)]
    ordered = sorted(events, key=lambda e: e["@timestamp"])
    # out of order within the bound: shuffled inside 4-second slots
    shuffled = sorted(ordered, key=lambda e: e["@timestamp"][:18] + str(rng.random()))
    every = StatefulSettings.load("config/detectors.yaml")
    detectors = every.detectors.model_copy(
        update={"new_process": every.detectors.new_process.model_copy(update={"refresh_s": 0})})
    every = every.model_copy(update={"detectors": detectors})
    reference = sorted((d.id, tuple(d.event_ids)) for d in run(ordered, every) if d.group["detector"] == "new_process")
    assert reference, "the scenario must make new_process alerts"
    plan = StatefulPlan.build(StatefulSettings.load("config/detectors.yaml"))
    sent = [pair for event in shuffled for pair in plan.route(event, []) if "|new_process|" in pair[0]]
    assert len(sent) < len(events) / 3
    found = sorted((d.id, tuple(d.event_ids)) for d in run(shuffled) if d.group["detector"] == "new_process")
    assert found == reference


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_within_the_bound_changes_nothing(seed: int) -> None:
    rng = random.Random(seed)
    events = [conn(f"f{p}", p * 0.5, "10.1.1.1", "10.2.2.2", 1000 + p) for p in range(30)]
    events += [auth(f"b{i}", i * 3, "alice", "203.0.113.9", "failure") for i in range(12)]
    ordered = sorted(events, key=lambda e: e["@timestamp"])
    # Shuffle within 10-second slots: displaced by less than the 5 s bound + slot, never late.
    shuffled = sorted(ordered, key=lambda e: e["@timestamp"][:18] + str(rng.random()))
    assert sorted(d.id for d in run(ordered)) == sorted(d.id for d in run(shuffled))


def test_snapshots_round_trip_and_state_expires() -> None:
    plan = StatefulPlan.build(StatefulSettings.load("config/detectors.yaml"))
    engine = StatefulEngine(plan)
    events = [conn(f"f{p}", p, "10.1.1.1", "10.2.2.2", 1000 + p) for p in range(10)]
    events += [auth(f"b{i}", i, "alice", "203.0.113.9", "failure") for i in range(5)]
    events += [dns("d1", 3, "abc.example.org"), {"@timestamp": at(4), "event": {"id": "p"}, "host": {"name": "h"},
                                                 "process": {"executable": "/bin/sh"}}]
    for event in events:
        engine.process(event)
    engine.process(conn("later", 30, "10.9.9.9", "10.2.2.2", 80))
    assert engine.driver.states
    for key, state in engine.driver.states.items():
        text = plan.dumps(key, state)
        assert plan.dumps(key, plan.loads(key, text)) == text
        assert json.loads(text)["v"] == 1
    engine.driver.advance(int((T0 + timedelta(days=40)).timestamp() * 1000))
    assert engine.driver.states == {}  # everything expired on event-time timers
