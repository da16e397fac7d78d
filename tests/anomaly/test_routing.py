"""Golden file of what anomaly routing sends to keyed state, event by event.

``StatefulPlan.route`` runs for every event of the job, so it is written for speed; this pins
its output (keys, items, their order, and which repeats the first-seen detectors leave out) on
a mixed, seeded event set: Sysmon process creations, flows, ECS and Windows logons, DNS,
events with flat dotted keys, partial and odd shapes. Regenerate with
``UPDATE_GOLDEN=1 pytest tests/anomaly/test_routing.py`` after a deliberate change.
"""

from __future__ import annotations

import json
import os
import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detectors.anomaly.config import StatefulSettings
from detectors.correlation.engine import event_time_ms
from detectors.stateful import StatefulPlan
from ingest.schema import format_timestamp

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "anomaly_routing.jsonl"
T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)


def _node(rng: random.Random) -> dict[str, Any]:
    number = rng.randrange(6)
    return {"id": f"n-{number}", "name": "node", "agency": f"a-{number % 3}", "security_level": 3}


def _process(rng: random.Random, ident: str | None) -> dict[str, Any]:
    host = rng.choice(["ag-001-pc001", "AG-001-PC001", "ag-002-pc007", "srv-db"])
    image = rng.choice(["C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\SVCHOST.EXE",
                        "C:\\Windows\\System32\\notepad.exe", "C:\\Temp\\x.exe"])
    event: dict[str, Any] = {
        "event": {"code": "1", "provider": "Microsoft-Windows-Sysmon", "kind": "event"},
        "host": {"name": host},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1, "computer_name": host,
                   "event_data": {"Image": image, "User": "HOAGIANG\\lan.pham"}},
        "process": {"executable": image, "pid": 4},
        "user": {"name": "HOAGIANG\\lan.pham"},
        "socflow": {"logsource": {"product": "windows", "category": "process_creation"}, "node": _node(rng)},
    }
    if ident is not None:
        event["event"]["id"] = ident
    return event


def _flow(rng: random.Random) -> dict[str, Any]:
    port: Any = rng.choice([443, 445, 5666, 123, rng.randrange(1, 65536), "443", "5666"])
    return {"event": {"category": ["network"]}, "source": {"ip": rng.choice(["10.0.0.5", "10.0.0.6", "fe80::1"])},
            "destination": {"ip": rng.choice(["10.1.0.1", "10.1.0.2", "203.0.113.9", "not-an-ip"]), "port": port},
            "socflow": {"node": _node(rng)}}


def _logon(rng: random.Random) -> dict[str, Any]:
    user = rng.choice(["alice", "Administrator", "root", "hung-adm", "bob.admin", "admin2"])
    source = rng.choice(["10.0.0.5", "10.9.9.9", None])
    outcome = rng.choice(["success", "failure", "unknown"])
    category: Any = rng.choice([["authentication"], "authentication", ["network"], None])
    event: dict[str, Any] = {"event": {"outcome": outcome}, "user": {"name": user}, "socflow": {"node": _node(rng)}}
    if category is not None:
        event["event"]["category"] = category
    if source is not None:
        event["source"] = {"ip": source}
    return event


def _windows_logon(rng: random.Random) -> dict[str, Any]:
    data = {"TargetUserName": rng.choice(["Administrator", "carol", ""]), "IpAddress": rng.choice(["10.3.3.3", "-"])}
    return {"event": {"code": "4625"}, "winlog": {"event_id": rng.choice([4624, 4625, 4634]), "event_data": data,
                                                  "computer_name": "DC01"}}


def _dns(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.4:
        name: Any = rng.choice(["www.hoagiang.gov.vn", "gov.vn", "mail.example.co.uk.", "example.com", ""])
    elif roll < 0.9:
        label = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(8, 40)))
        name = f"{label}.sync-cdn.net"
    else:
        name = rng.choice([None, 42])
    return {"event": {"category": ["network"]}, "source": {"ip": "10.0.0.7"}, "dns": {"question": {"name": name}},
            "socflow": {"node": _node(rng)}}


def _odd(rng: random.Random) -> dict[str, Any]:
    """Flat dotted keys, partial and mistyped shapes: the general lookups' ground."""
    return rng.choice([
        {"source.ip": "10.0.0.8", "destination.ip": "10.1.0.3", "destination.port": 22, "socflow.node.id": "n-flat"},
        {"source": {"ip": "10.0.0.8"}, "destination.ip": "10.1.0.4", "destination.port": 3389},
        {"source": {"port": 5}, "source.ip": "10.0.0.9", "destination": {"ip": "10.1.0.5", "port": 80}},
        {"dns.question.name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.tunnel.net"},
        {"dns": {"question.name": "www.flat.example.org"}},
        {"dns": {"question": "not-a-mapping"}},
        {"dns": "text"},
        {"host.name": "flat-host", "process.name": "flat.exe", "socflow": "not-a-mapping"},
        {"host": {"name": ""}, "winlog": {"computer_name": "WIN-HOST"}, "process": {"name": "cmd.exe"}},
        {"process": {"executable": "", "name": "only-name.exe"}, "host": {"name": "h1"}},
        {"process": "not-a-mapping", "process.executable": "/bin/sh", "host": {"name": "h2"}},
        {"socflow": {"node": {"id": "n-7"}}, "event": {"outcome": "failure", "category": "authentication"},
         "user.name": "Eve", "source.ip": "10.6.6.6"},
        {"socflow": {"node": {"agency": "a-only"}}, "user": {"name": "root"},
         "event": {"outcome": "success", "category": ["authentication"]}},
        {"event": {"outcome": "failure", "category": ["authentication"]}, "user": {"name": None},
         "winlog": {"event_data": {"TargetUserName": "dave"}}, "source": {"ip": None}},
        {"event": "not-a-mapping", "socflow": {"node": "not-a-mapping", "node.id": "n-x"}},
        {"socflow": {"node": {"id": "", "agency": None}}},
    ])


KINDS = [_flow, _logon, _windows_logon, _dns, _odd]


def events(count: int = 500, seed: int = 11) -> list[dict[str, Any]]:
    """Mostly process creations (the job's main load), then the other kinds; times wander back
    and forth over hours so the first-seen repeats are both left out and sent again."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        ident = None if number % 13 == 0 else f"e{number:05}"
        event = _process(rng, ident) if rng.random() < 0.45 else rng.choice(KINDS)(rng)
        if ident is not None and "event" not in event:
            event["event.id"] = ident
        elif ident is not None and isinstance(event["event"], dict):
            event["event"]["id"] = ident
        seconds = number * 37 + rng.choice([0, 0, -900, -4000, 600])
        event["@timestamp"] = format_timestamp(T0 + timedelta(seconds=seconds))
        out.append(event)
    return out


def plans() -> dict[str, StatefulPlan]:
    """The configured detectors, and a variant with some disabled and no first-seen refresh."""
    configured = StatefulSettings.load(REPO / "config" / "detectors.yaml")
    detectors = configured.detectors
    changes = {"portscan": {"enabled": False}, "volume_agency": {"enabled": False},
               "new_process": {"refresh_s": 0}, "new_admin_source": {"refresh_s": 60}}
    varied = detectors.model_copy(update={name: getattr(detectors, name).model_copy(update=update)
                                          for name, update in changes.items()})
    return {"configured": StatefulPlan.build(configured),
            "varied": StatefulPlan.build(configured.model_copy(update={"detectors": varied}))}


def test_routing_matches_golden() -> None:
    lines = []
    for variant, plan in plans().items():
        for number, event in enumerate(events()):
            pairs = plan.route(event, [])
            lines.append(json.dumps([variant, number, pairs], separators=(",", ":"), ensure_ascii=False) + "\n")
    text = "".join(lines)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_event_time_remembers_texts_and_agrees_with_event_time_ms() -> None:
    logic = StatefulPlan.build().anomalies
    stamps: list[Any] = ["2026-05-04T08:00:00.123Z", "2026-05-04 10:00:00.5+02:00", "2026-05-04T08:00:00",
                         1_777_881_600_123, 1_777_881_600.5, "", "yesterday", None, True]
    for stamp in stamps * 2:  # the second round from what was remembered
        event = {} if stamp is None else {"@timestamp": stamp}
        assert logic.event_time(event) == event_time_ms(event), stamp
