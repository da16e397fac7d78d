"""Deterministic event sequences for the whole detection job, over the project's own rules.

Three phases, each one JSON-lines file that a collector turns into spool segments. Events are
in the socflow shape the rules in ``rules/`` and the detectors of ``config/detectors.yaml``
expect. Each phase is written only after the job has processed the previous one (its alerts
are committed), so event time has provably advanced and the late events of phase 2 are late
in Flink exactly as they are in the pure core:

- phase 1: nine failed SSO logons of one account (one pair out of order within the 5 s
  bound), password spraying on mail (twelve accounts, one pair out of order), two Linux
  reconnaissance bursts that each lack their third command, a port scan whose alert proves
  the watermark has passed every earlier event, and a tick that moves the watermark;
- phase 2: the tenth SSO failure, late but within the allowed lateness (60 s): applied, it
  completes the chained ``sso_many_failed_logons`` so the success that follows makes
  ``sso_bruteforce_then_success``; the missing reconnaissance command of host ``srv-a``, late
  within the lateness (applied: ``linux_recon_burst``), and that of ``srv-b``, late beyond it
  (dropped and counted: no alert); large document downloads whose ``value_avg`` window only
  closes on the watermark; a tick;
- phase 3: one event two hours on, which moves the watermark past every window (a running
  job never sees the end of its input, so this stands in for the flush of ``socflow replay``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.schema import format_timestamp

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
Event = dict[str, Any]


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def _logon(service: str, ident: str, seconds: float, user: str, source: str, outcome: str) -> Event:
    return {
        "@timestamp": at(seconds),
        "event": {"id": ident, "category": "authentication", "outcome": outcome},
        "user": {"name": user},
        "source": {"ip": source},
        "socflow": {"logsource": {"product": "socflow", "service": service}},
    }


def sso(ident: str, seconds: float, user: str, outcome: str, source: str = "198.51.100.9") -> Event:
    return _logon("sso-auth", ident, seconds, user, source, outcome)


def mail(ident: str, seconds: float, user: str, source: str = "203.0.113.50") -> Event:
    return _logon("mail-auth", ident, seconds, f"{user}@hoagiang.gov.vn", source, "failure")


def command(ident: str, seconds: float, host: str, user: str, name: str) -> Event:
    return {
        "@timestamp": at(seconds),
        "event": {"id": ident, "category": "process", "type": "start"},
        "host": {"name": host},
        "user": {"name": user},
        "process": {"name": name, "executable": f"/usr/bin/{name}"},
        "socflow": {"logsource": {"product": "linux", "category": "process_creation"}},
    }


def flow(ident: str, seconds: float, source: str, destination: str, port: int) -> Event:
    return {
        "@timestamp": at(seconds),
        "event": {"id": ident, "category": "network", "type": "connection"},
        "source": {"ip": source},
        "destination": {"ip": destination, "port": port},
    }


def download(ident: str, seconds: float, user: str, size: int) -> Event:
    return {
        "@timestamp": at(seconds),
        "event": {"id": ident, "action": "document-download"},
        "user": {"name": user},
        "http": {"response": {"body": {"bytes": size}}},
        "url": {"path": f"/vb/{ident}.pdf"},
        "socflow": {"logsource": {"product": "socflow", "service": "dms"}},
    }


def tick(ident: str, seconds: float) -> Event:
    """An event no rule matches: it only moves event time (and feeds the volume baselines)."""
    return {"@timestamp": at(seconds), "event": {"id": ident, "category": "host", "type": "info"},
            "host": {"name": "ntp-probe"}}


def phase1() -> list[Event]:
    events = [sso(f"f{n:02d}", n * 20, "minh.le", "failure") for n in range(9)]  # 0 .. 160 s
    events += [mail(f"m{n:02d}", 20 + 4 * n, f"user{n:02d}") for n in range(12)]  # 20 .. 64 s
    events += [
        command("ra1", 100, "srv-a", "ops1", "whoami"), command("ra2", 110, "srv-a", "ops1", "ip"),
        command("rb1", 100, "srv-b", "ops2", "id"), command("rb2", 110, "srv-b", "ops2", "netstat"),
    ]
    # 25 ports in 25 s: the 20th distinct port (219 s) raises the port scan alert, which the
    # tests wait for to know the watermark has passed every event of this phase's keys.
    events += [flow(f"p{port}", 200 + port - 1000, "10.0.0.99", "10.0.1.5", port) for port in range(1000, 1025)]
    events.append(tick("t1", 240))
    return sorted(events, key=_arrival)


# Events that arrive this many seconds after their event time (the others arrive in time
# order): out of order, yet within the 5 s bound, so never late.
DELAYED_S = {"m05": 4.5, "p1010": 3.5}


def phase2() -> list[Event]:
    events = [
        sso("f09", 150, "minh.le", "failure"),  # late (horizon 160 s) but within 60 s: applied
        command("ra3", 80, "srv-a", "ops1", "uname"),  # late (horizon 110 s), within 60 s: applied
        command("rb3", 40, "srv-b", "ops2", "hostnamectl"),  # late beyond 60 s: dropped, counted
        download("d1", 250, "thu.ha", 25_000_000),
        download("d3", 270, "thu.ha", 27_000_000),
        download("d2", 268, "thu.ha", 26_000_000),  # 2 s out of order: within the bound
        sso("s01", 300, "minh.le", "success"),  # after ten failures: brute force, then success
        tick("t2", 400),
    ]
    return events  # in this (arrival) order: the late events first, as a lagging source sends them


def phase3() -> list[Event]:
    return [tick("t3", 7200)]


def phases() -> list[list[Event]]:
    return [phase1(), phase2(), phase3()]


def write_phase(directory: Path, number: int, events: list[Event]) -> Path:
    """The phase as a JSON-lines file, moved into ``directory`` whole (never seen half-written)."""
    directory.mkdir(parents=True, exist_ok=True)
    hidden = directory / f".phase-{number}.jsonl"
    hidden.write_text("".join(json.dumps(event, sort_keys=True) + "\n" for event in events), encoding="utf-8")
    final = directory / f"phase-{number}.jsonl"
    hidden.replace(final)
    return final


def _arrival(event: Event) -> datetime:
    moment = datetime.fromisoformat(str(event["@timestamp"]).replace("Z", "+00:00"))
    return moment + timedelta(seconds=DELAYED_S.get(str(event["event"]["id"]), 0.0))
