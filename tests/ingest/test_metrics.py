"""Prometheus metrics of the collectors: the names the dashboards and alert rules use."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from ingest.files import collect_paths
from ingest.metrics import serve
from ingest.net.sensor import collect_pcaps
from ingest.settings import CollectorSettings
from tests.ingest.pcaps import write_scenario

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_collector_metrics(tmp_path: Path) -> None:
    source = tmp_path / "app.jsonl"
    shutil.copy(DATA / "ecs.jsonl", source)
    before = {
        "in": sample("socflow_collector_events_total", collector="metrics-test", outcome="received"),
        "out": sample("socflow_collector_events_total", collector="metrics-test", outcome="sent"),
        "dead": sample("socflow_collector_dead_letters_total", collector="metrics-test"),
        "fail": sample("socflow_collector_parse_failures_total", collector="metrics-test", format="json"),
        "bytes": sample("socflow_collector_bytes_total", collector="metrics-test"),
    }
    collect_paths([source], tmp_path / "spool", settings=CollectorSettings(), writer_id="metrics-test")
    assert sample("socflow_collector_events_total", collector="metrics-test", outcome="received") - before["in"] == 4
    assert sample("socflow_collector_events_total", collector="metrics-test", outcome="sent") - before["out"] == 4
    assert sample("socflow_collector_dead_letters_total", collector="metrics-test") - before["dead"] == 3
    assert sample("socflow_collector_parse_failures_total", collector="metrics-test", format="json") - before[
        "fail"] == 3
    assert sample("socflow_collector_bytes_total", collector="metrics-test") - before["bytes"] == source.stat().st_size
    assert sample("socflow_collector_lag_seconds", collector="metrics-test") > 0
    assert sample("socflow_node_last_event_timestamp_seconds", node="dc-portal") >= 1763625600
    text = generate_latest().decode()
    for name in ("socflow_collector_events_total", "socflow_collector_bytes_total",
                 "socflow_collector_parse_failures_total", "socflow_collector_dead_letters_total",
                 "socflow_collector_lag_seconds", "socflow_node_last_event_timestamp_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_sensor_metrics_and_http_endpoint(tmp_path: Path) -> None:
    pcap = write_scenario(tmp_path / "s.pcap")
    collect_pcaps([pcap], tmp_path / "spool", settings=CollectorSettings(), writer_id="metrics-net")
    assert sample("socflow_sensor_packets_total", collector="metrics-net", outcome="seen") == 25
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert serve(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'socflow_collector_events_total{collector="metrics-net",outcome="sent"}' in body
