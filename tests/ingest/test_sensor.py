"""The network sensor: crafted pcaps, cross-checked with tshark, and a live capture across a
veth pair between two network namespaces (traffic replayed with tcpreplay)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ingest.net.capture import read_pcap
from ingest.net.flows import FlowEngine
from ingest.net.sensor import collect_pcaps
from ingest.settings import CollectorSettings
from ingest.spool import read_batches
from tests.ingest.pcaps import HTTP_REQUEST, JA3_STRING, SNI, write_scenario

SETTINGS = CollectorSettings(commit_interval_s=0.2)
SOCFLOW = str(Path(sys.executable).with_name("socflow"))


def records(spool: Path) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for batch in read_batches(spool):
        for event in batch:
            grouped.setdefault(event["event"]["dataset"], []).append(event)
    return grouped


def check_scenario(found: dict[str, list[dict]]) -> None:
    """What the scenario pcap holds, record by record."""
    conns = {(c["destination"]["port"], c["network"]["transport"]): c for c in found["sensor.conn"]}
    assert set(conns) == {(53, "udp"), (80, "tcp"), (443, "tcp"), (3389, "tcp"), (514, "udp")}
    http_conn = conns[(80, "tcp")]
    assert http_conn["source"]["ip"] == "10.20.3.15" and http_conn["source"]["port"] == 40001
    assert http_conn["sensor"]["conn"]["state"] == "SF" and http_conn["sensor"]["conn"]["history"] == "ShADadFf"
    assert http_conn["source"]["packets"] == 6 and http_conn["destination"]["packets"] == 4
    assert http_conn["sensor"]["conn"]["orig_bytes"] == len(HTTP_REQUEST)
    assert http_conn["network"]["protocol"] == "http"
    assert http_conn["network"]["community_id"].startswith("1:")
    assert http_conn["socflow"]["logsource"] == {"product": "zeek", "service": "conn"}
    assert conns[(3389, "tcp")]["sensor"]["conn"]["state"] == "REJ"
    assert conns[(514, "udp")]["destination"]["packets"] == 0
    assert conns[(443, "tcp")]["network"]["protocol"] == "tls"
    query, answer = sorted(found["sensor.dns"], key=lambda r: r["dns"]["type"] != "query")
    assert query["dns"]["question"] == {"name": "portal.hoagiang.gov.vn", "type": "A", "class": "IN"}
    assert answer["dns"]["answers"][0]["data"] == "10.10.1.20" and answer["dns"]["response_code"] == "NOERROR"
    assert answer["socflow"]["logsource"] == {"category": "dns"}
    (http,) = found["sensor.http"]
    assert http["url"] == {"original": "/dichvucong/search?q=test", "path": "/dichvucong/search", "query": "q=test",
                           "domain": "portal.hoagiang.gov.vn"}
    assert http["http"]["request"]["method"] == "GET" and http["http"]["response"]["status_code"] == 200
    assert http["user_agent"]["original"] == "Mozilla/5.0 (socflow-test)"
    (tls,) = found["sensor.tls"]
    assert tls["tls"]["client"]["server_name"] == SNI
    assert tls["event"]["original"] == JA3_STRING
    assert http_conn["socflow"]["node"]["id"] == "cp-003"  # the originator's network


def test_pcap_records(tmp_path: Path) -> None:
    pcap = write_scenario(tmp_path / "scenario.pcap")
    stats = collect_pcaps([pcap], tmp_path / "spool", settings=SETTINGS)
    assert stats.packets == 25 and stats.undecoded == 0 and stats.flows == 5
    check_scenario(records(tmp_path / "spool"))
    assert collect_pcaps([pcap], tmp_path / "spool", settings=SETTINGS).events == 0  # already read


def test_timeouts_and_bounded_table() -> None:
    out: list[tuple[str, dict]] = []
    engine = FlowEngine(lambda kind, record, position: out.append((kind, record)), idle_timeout=5,
                        active_timeout=20, max_flows=100)
    frames = list(read_pcap(write_scenario(Path(os.environ.get("TMPDIR", "/tmp")) / f"s-{uuid.uuid4().hex}.pcap")))
    udp = frames[-1][1]
    # One long-lived UDP flow sending every 2 s for 50 s: exported every 20 s (active timeout).
    engine.feed((1_000.0 + 2 * index, udp) for index in range(26))
    segments = [r for kind, r in out if kind == "conn"]
    assert len(segments) == 2 and all(r["sensor"]["conn"].get("segment", 0) in (0, 1) for r in segments)
    # Idle: nothing for 10 s, then another packet elsewhere exports it.
    engine.feed([(1_070.0, frames[0][1])])
    assert len([r for kind, r in out if kind == "conn"]) == 3
    # Bounded: 300 distinct flows through a table of 100 export early, none is lost.
    out.clear()
    engine = FlowEngine(lambda kind, record, position: out.append((kind, record)), max_flows=100)
    base = bytearray(udp)
    packets = []
    for port in range(300):
        frame = bytearray(base)
        frame[34:36] = (10000 + port).to_bytes(2, "big")
        packets.append((2_000.0, bytes(frame)))
    engine.feed(packets)
    assert len(engine.flows) <= 100 and engine.evicted == 200
    engine.flush()
    assert len([r for kind, r in out if kind == "conn"]) == 300


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_cross_check_with_tshark(tmp_path: Path) -> None:
    pcap = write_scenario(tmp_path / "scenario.pcap")
    collect_pcaps([pcap], tmp_path / "spool", settings=SETTINGS)
    found = records(tmp_path / "spool")
    fields = ["tls.handshake.extensions_server_name", "tls.handshake.ja3", "dns.qry.name", "dns.a", "http.host",
              "http.user_agent", "http.request.uri", "tcp.stream"]
    output = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", *[x for f in fields for x in ("-e", f)],
                             "-Y", "tls.handshake.type == 1 or dns or http.request"], capture_output=True,
                            text=True, check=True).stdout
    rows = [dict(zip(fields, line.split("\t"), strict=False)) for line in output.splitlines()]
    tls_row = next(r for r in rows if r["tls.handshake.ja3"])
    assert found["sensor.tls"][0]["tls"]["client"]["ja3"] == tls_row["tls.handshake.ja3"]
    assert found["sensor.tls"][0]["tls"]["client"]["server_name"] == tls_row["tls.handshake.extensions_server_name"]
    http_row = next(r for r in rows if r["http.host"])
    sensor_http = found["sensor.http"][0]
    assert (sensor_http["url"]["domain"], sensor_http["user_agent"]["original"], sensor_http["url"]["original"]) == (
        http_row["http.host"], http_row["http.user_agent"], http_row["http.request.uri"])
    answer_row = next(r for r in rows if r["dns.a"])
    sensor_answer = next(r for r in found["sensor.dns"] if r["dns"]["type"] == "answer")
    assert sensor_answer["dns"]["question"]["name"] == answer_row["dns.qry.name"]
    assert sensor_answer["dns"]["resolved_ip"] == answer_row["dns.a"].split(",")
    # Conversations: tshark's TCP stream count equals the sensor's TCP flows.
    streams = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "tcp.stream", "-Y", "tcp"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert len(set(streams)) == len([c for c in found["sensor.conn"] if c["network"]["transport"] == "tcp"])


def _netns_reason() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (network namespaces)"
    for tool in ("ip", "tcpreplay"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@pytest.mark.skipif(_netns_reason() is not None, reason=_netns_reason() or "")
def test_live_capture_across_veth_pair(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    sensor_ns, peer_ns = f"sfs-{tag}", f"sfp-{tag}"
    sensor_if, peer_if = f"sfs{tag}", f"sfp{tag}"
    pcap = write_scenario(tmp_path / "scenario.pcap")
    spool = tmp_path / "spool"
    try:
        _run("ip", "netns", "add", sensor_ns)
        _run("ip", "netns", "add", peer_ns)
        _run("ip", "link", "add", sensor_if, "type", "veth", "peer", "name", peer_if)
        _run("ip", "link", "set", sensor_if, "netns", sensor_ns)
        _run("ip", "link", "set", peer_if, "netns", peer_ns)
        for namespace, interface, address in ((sensor_ns, sensor_if, "10.250.0.1/30"),
                                              (peer_ns, peer_if, "10.250.0.2/30")):
            _run("ip", "-n", namespace, "addr", "add", address, "dev", interface)
            _run("ip", "-n", namespace, "link", "set", interface, "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        sensor = subprocess.Popen(
            ["ip", "netns", "exec", sensor_ns, SOCFLOW, "--data-dir", str(tmp_path / "data"), "collect", "net",
             "--iface", sensor_if, "--bpf", "ip and not net 10.250.0.0/30", "--spool", str(spool)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "SOCFLOW_COLLECTOR__COMMIT_INTERVAL_S": "0.2"})
        try:
            assert sensor.stdout is not None
            line = sensor.stdout.readline()
            assert b"capturing" in line, sensor.stderr.read() if sensor.stderr else line
            _run("ip", "netns", "exec", peer_ns, "tcpreplay", "-q", "-i", peer_if, str(pcap))
        finally:
            sensor.send_signal(signal.SIGTERM)
            out, err = sensor.communicate(timeout=30)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["packets"] == 25, err.decode()[-2000:]
    finally:
        subprocess.run(["ip", "netns", "del", sensor_ns], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", peer_ns], check=False, capture_output=True)
    found = records(spool)
    check_scenario(found)
    assert all(r["socflow"]["collector"]["input"] == "iface" for group in found.values() for r in group)
    assert found["sensor.conn"][0]["observer"]["ingress"]["interface"]["name"] == sensor_if


def test_bpf_filter_on_pcap(tmp_path: Path) -> None:
    pcap = write_scenario(tmp_path / "scenario.pcap")
    stats = collect_pcaps([pcap], tmp_path / "spool", settings=SETTINGS, bpf="udp port 53 or tcp port 443")
    assert stats.packets == 12  # the DNS exchange and the TLS session
    found = records(tmp_path / "spool")
    assert {c["destination"]["port"] for c in found["sensor.conn"]} == {53, 443}
    assert "sensor.http" not in found
