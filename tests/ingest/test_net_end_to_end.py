"""The network sources end to end: sample files through the file collector (sniffed per file, and
with ``--format``) into the spool, syslog messages through the syslog collector, and
``socflow replay`` over the files with the project's rules (and SigmaHQ's FortiGate and Cisco
rules from the corpora): each source's rule fires, the correlations across sources too."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from alerts.cli import main
from ingest.files import collect_paths
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from ingest.syslog import Listen
from tests.ingest.test_syslog import Server

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "ingest" / "net"
SETTINGS = CollectorSettings(commit_interval_s=0.1)
# file -> (format sniffed, events, dead letters, skipped directives)
EXPECTED = {"fortigate.log": ("fortigate", 8, 1, 0), "asa.log": ("asa", 14, 1, 0), "cef.log": ("cef", 7, 1, 0),
            "filterlog.log": ("filterlog", 4, 1, 0), "netfilter.log": ("netfilter", 4, 1, 0),
            "squid.log": ("squid", 4, 1, 0), "iis.log": ("iis", 7, 2, 8)}


def _spool(spool: Path) -> tuple[list[dict], list[dict]]:
    return [event for batch in read_batches(spool) for event in batch], list(dead_letters(spool))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_collector_sniffs_and_reads_each_source(tmp_path: Path, name: str) -> None:
    fmt, events_expected, dead_expected, skipped_expected = EXPECTED[name]
    for option in ("auto", fmt):
        source = tmp_path / option / name
        source.parent.mkdir()
        shutil.copy(DATA / name, source)
        stats = collect_paths([source], tmp_path / option / "spool", settings=SETTINGS, fmt=option, progress=False)
        events, letters = _spool(tmp_path / option / "spool")
        assert (stats.events, stats.dead_letters, stats.skipped) == (events_expected, dead_expected, skipped_expected)
        assert len(events) == events_expected and len(letters) == dead_expected
        assert all(event["event"]["id"] and event["log"]["file"]["path"] == str(source) for event in events)
        assert all(event["socflow"]["logsource"] and event["socflow"]["node"] for event in events)
        assert all(letter["reason"] for letter in letters)


def _send(port: int, messages: list[str]) -> None:
    """RFC 6587 octet counting over TCP, as rsyslog and FortiGate's reliable syslog send it."""
    payload = b"".join(f"{len(m.encode())} ".encode() + m.encode() for m in messages)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(payload)


def test_syslog_collector_reads_appliance_messages(tmp_path: Path) -> None:
    messages = [line for name in ("fortigate.log", "asa.log", "cef.log", "filterlog.log", "netfilter.log")
                for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.startswith("<")]
    server = Server(tmp_path / "spool", [Listen("tcp", "127.0.0.1", 0)], SETTINGS)
    try:
        _send(server.ports["tcp"], messages)
        events = server.wait_for(len(messages))
    finally:
        server.close()
    letters = list(dead_letters(tmp_path / "spool"))
    assert len(events) + len(letters) == len(messages)
    assert [letter["reason"] for letter in letters] == ["bad Cisco message id '%ASA-x-106023: Deny '",
                                                        "CEF header has 3 of its 7 '|'-separated fields",
                                                        "filterlog record with 8 columns, fewer than the 9 of its head"]
    datasets = {event["event"]["dataset"] for event in events}
    assert {"fortigate.traffic", "fortigate.event", "fortigate.utm", "cisco.asa", "pfsense.filterlog",
            "netfilter.log", "cef.imperva_inc.securesphere", "leef.lancope.stealthwatch"} <= datasets
    deny = next(event for event in events if event["event"].get("code") == "106023")
    assert deny["network"]["transport"] == "tcp" and deny["source"]["ip"] == "203.0.113.45"  # not syslog's
    assert deny["log"]["source"]["address"].startswith("127.0.0.1:")
    icmp = next(event for event in events if event["event"]["dataset"] == "pfsense.filterlog"
                and event["network"].get("type") == "ipv6")
    assert icmp["network"]["transport"] == "ipv6-icmp"


def _attack_files(directory: Path) -> None:
    """The samples, plus a FortiGate brute force and an iptables port scan to wake the correlations."""
    for name in EXPECTED:
        shutil.copy(DATA / name, directory / name)
    with (directory / "fortigate-bruteforce.log").open("w") as handle:
        for n in range(6):
            handle.write(f'<185>date=2026-12-07 time=09:40:{n * 7:02d} devname="fw-cp001" devid="FG100FTK19000001" '
                         f'tz="+0700" logid="0100032002" type="event" subtype="system" level="alert" vd="root" '
                         f'logdesc="Admin login failed" user="admin{n}" ui="https(203.0.113.66)" srcip=203.0.113.66 '
                         f'action="login" status="failed" reason="passwd_invalid" msg="Administrator admin{n} login '
                         f'failed from https(203.0.113.66) because of invalid password"\n')
    with (directory / "kern-portscan.log").open("w") as handle:
        for n, port in enumerate([21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 1433, 3306, 3389]):
            handle.write(f"Dec  7 09:41:{n:02d} gw-cp003 kernel: [1234600.{n}] nft-drop-in: IN=eth0 OUT= "
                         f"SRC=203.0.113.77 DST=10.50.0.5 LEN=44 TTL=40 ID={n} PROTO=TCP SPT=40{n:03d} DPT={port} "
                         f"WINDOW=1024 RES=0x00 SYN URGP=0\n")


def _replay(tmp_path: Path, rules: list[Path], inputs: Path) -> list[dict]:
    output = tmp_path / "alerts.jsonl"
    code = main(["--data-dir", str(tmp_path / "data"), "replay", "--rules", *map(str, rules),
                 "--output", str(output), str(inputs)])
    assert code == 0
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def test_replay_fires_each_sources_rules(tmp_path: Path) -> None:
    inputs = tmp_path / "logs"
    inputs.mkdir()
    _attack_files(inputs)
    alerts = _replay(tmp_path, [REPO / "rules"], inputs)
    fired: dict[str, set[str]] = {}  # rule title -> the sources (dataset prefixes) of its alerts
    for alert in alerts:
        dataset = str(alert["event"].get("dataset") or "correlation")
        fired.setdefault(alert["rule"]["name"], set()).add(dataset.split(".", maxsplit=1)[0])
    assert fired == {
        "FortiGate Administrator Login Failed": {"fortigate"},
        "FortiGate Administrator Login Brute Force": {"correlation"},
        "Port Scan Denied at a Connection Point Firewall": {"correlation"},
        "Cisco ASA Configured to Permit Any Traffic or to Stop Logging": {"cisco"},
        "Executable Downloaded Through the Proxy From a Bare IP Address": {"squid"},
        "Web Shell Path on Exchange OWA": {"iis"},
        "Vulnerability Scanner User Agent": {"iis"},
        "Appliance Blocked an Attack (CEF)": {"cef"},
        "Appliance Blocked an Attack (LEEF)": {"leef"},
    }
    scan = next(alert for alert in alerts if alert["rule"]["name"].startswith("Port Scan"))
    assert scan["source"]["ip"] == "203.0.113.77"
    brute = next(alert for alert in alerts if alert["rule"]["name"].endswith("Brute Force"))
    assert brute["source"]["ip"] == "203.0.113.66"


def test_denied_connections_of_every_firewall_feed_the_port_scan(tmp_path: Path) -> None:
    """The building block alerts only through the correlation: matched here event by event."""
    from detectors.sigma import SigmaEngine

    inputs = tmp_path / "logs"
    inputs.mkdir()
    _attack_files(inputs)
    collect_paths([inputs], tmp_path / "spool", settings=SETTINGS, progress=False)
    engine, report = SigmaEngine.load([REPO / "rules" / "firewall" / "firewall_connection_denied.yml"],
                                      config_dir=REPO / "config")
    assert not report.failures
    events, _ = _spool(tmp_path / "spool")
    denied = {event["event"]["dataset"].split(".")[0] for event in events if engine.match(event)}
    assert denied == {"fortigate", "cisco", "pfsense", "netfilter", "cef", "leef"}
    assert not any(engine.match(event) for event in events if "denied" not in event["event"].get("type", []))


def test_sigmahq_fortigate_and_cisco_rules_fire(tmp_path: Path, corpora: Path) -> None:
    inputs = tmp_path / "logs"
    inputs.mkdir()
    for name in ("fortigate.log", "asa.log"):
        shutil.copy(DATA / name, inputs / name)
    sigma = corpora / "sigma" / "rules" / "network"
    alerts = _replay(tmp_path, [sigma / "fortinet", sigma / "cisco" / "aaa", sigma / "firewall"], inputs)
    names = {alert["rule"]["name"] for alert in alerts}
    assert "FortiGate - New Firewall Policy Added" in names  # action=Add cfgpath=firewall.policy
    assert "Cisco Clear Logs" in names  # ASA 111008: 'clear logging buffer'
