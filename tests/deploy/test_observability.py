"""Prometheus config, alert rules and the Grafana dashboard agree with each other and the code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "socflow-dashboard.json"
METRIC = re.compile(r"\b((?:socflow|flink)_[a-zA-Z_]+)")


def documented_metrics() -> set[str]:
    """Metric names listed in the comment header of alerts.yml (the contract)."""
    header = [line for line in (PROMETHEUS / "alerts.yml").read_text().splitlines() if line.startswith("#")]
    return {match.group(1) for line in header for match in METRIC.finditer(line)}


def used_metrics(text: str) -> set[str]:
    return {name for name in METRIC.findall(text) if not name.startswith("socflow-")}


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI (deploy/run test installs Debian's prometheus package)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return tool


@pytest.mark.parametrize("args", [
    ["check", "config", "prometheus.yml"],
    ["check", "rules", "alerts.yml"],
    ["test", "rules", "alerts_test.yml"],
], ids=["config", "rules", "rule-tests"])
def test_promtool_accepts(args: list[str]) -> None:
    result = subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_use_only_documented_metrics() -> None:
    body = "\n".join(line for line in (PROMETHEUS / "alerts.yml").read_text().splitlines()
                     if not line.startswith("#"))
    assert used_metrics(body) <= documented_metrics()


def test_dashboard_is_valid_and_uses_only_documented_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "socflow-pipeline"
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in panels if panel["type"] != "row"]
    titles = " ".join(panel["title"].lower() for panel in graphs)
    for topic in ("events in / out", "parse failures", "dead letters", "alerts indexed", "indexer lag",
                  "flink records"):
        assert topic in titles
    exprs = [target["expr"] for panel in graphs for target in panel["targets"]]
    assert all(exprs)
    assert used_metrics("\n".join(exprs)) <= documented_metrics()


def test_documented_socflow_metrics_exist_in_the_code() -> None:
    """Catches a rename in ingest/ or alerts/ that would silently blank a panel or an alert."""
    from prometheus_client import REGISTRY

    import alerts.eventstore.metrics  # registers the event writer metrics (the package import binds "alerts")
    import alerts.metrics  # noqa: F401 (registers the indexer metrics)
    import ingest.metrics  # noqa: F401 (registers the collector metrics)

    exported = set()
    for family in REGISTRY.collect():
        exported.add(f"{family.name}_total" if family.type == "counter" else family.name)
    documented = {name for name in documented_metrics() if name.startswith("socflow_")}
    assert documented - exported == set()
