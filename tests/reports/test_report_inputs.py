"""Bad input: unknown scope ids and incidents are clear errors; a period without data says so
section by section; a missing event store or audit trail makes its sections "not available"."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.cli import main
from alerts.reports import ReportError
from alerts.reports.period import named_period
from alerts.reports.service import Request, make_report
from tests.reports.conftest import NOW, Loaded, settings_for

pytestmark = pytest.mark.integration


def test_unknown_agency_and_incident_are_clear_errors(loaded: Loaded) -> None:
    period = named_period(loaded.settings.reports, "monthly:2026-11")
    with pytest.raises(ReportError, match="unknown agency id 'ag-999'"):
        make_report(loaded.settings, loaded.client, Request("periodic", period, "agency ag-999"), now=NOW)
    with pytest.raises(ReportError, match="unknown incident 'INC-NOPE'"):
        make_report(loaded.settings, loaded.client, Request("incident", period, None, "en", "INC-NOPE"), now=NOW)


def test_period_without_data_says_so_per_section(loaded: Loaded) -> None:
    period = named_period(loaded.settings.reports, "monthly:2024-03")
    report = make_report(loaded.settings, loaded.client, Request("periodic", period, None, "en"), now=NOW)
    states = {name: report["sections"][name]["status"] for name in report["order"]}
    assert states["monitoring"] == "empty" and states["coverage"] == "empty" and states["response"] == "empty"
    assert report["sections"]["retention"]["deletions"]["list"] == []


def test_missing_stores_are_not_available(elasticsearch_url: str, tmp_path: Path) -> None:
    from elasticsearch import Elasticsearch

    settings = settings_for(elasticsearch_url, "t-reports-absent", tmp_path)
    period = named_period(settings.reports, "monthly:2026-11")
    with Elasticsearch(elasticsearch_url) as client:
        report = make_report(settings, client, Request("periodic", period, None, "en"), now=NOW)
    sections = report["sections"]
    assert sections["coverage"]["status"] == "not_available"
    assert "event store: index t-reports-absent-events does not exist" in sections["coverage"]["reason"]
    assert sections["monitoring"]["status"] == "not_available"
    assert sections["retention"]["deletions"]["status"] == "not_available"
    assert sections["response"]["incidents"]["status"] == "not_available"
    assert sections["scope"]["status"] == "ok"
    verdicts = {row["control"]: row["verdict"] for row in sections["controls"]["rows"]}
    assert verdicts["AU-6 Audit record review"] == "not"


def test_cli_writes_the_report_and_refuses_an_unknown_node(loaded: Loaded, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded.settings
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", settings.elasticsearch.url)
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("SOCFLOW_EVENT_STORE__INDEX_PREFIX", settings.event_store.index_prefix)
    monkeypatch.setenv("SOCFLOW_REPORTS__AUDIT_INDEX", settings.reports.audit_index)
    monkeypatch.setenv("SOCFLOW_REPORTS__INCIDENTS_INDEX", settings.reports.incidents_index)
    output = tmp_path / "ops.json"
    base = ["--data-dir", str(tmp_path / "data"), "report"]
    code = main([*base, "operations", "--period", "monthly:2026-11", "--format", "json", "--output", str(output),
                 "--now", "2026-12-02T08:00:00+07:00", "--issue", "--actor", "auditor1"])
    assert code == 0, capsys.readouterr()
    assert '"kind": "operations"' in output.read_text(encoding="utf-8")
    assert main([*base, "list"]) == 0
    assert "operations\tmonthly:2026-11\tprovince\tjson:" in capsys.readouterr().out
    assert main([*base, "periodic", "--period", "yearly:2026", "--scope", "node", "nope-01"]) == 2
    assert "unknown node id 'nope-01'" in capsys.readouterr().err
    assert main([*base, "schedule", "--now", "2026-12-16T08:00:00+07:00"]) == 0
    assert "periodic\tyearly\tprovince\tjson,html,pdf\tlast complete: yearly:2026" in capsys.readouterr().out


def test_scheduler_issues_each_due_report_once(loaded: Loaded, tmp_path: Path) -> None:
    import hashlib

    from alerts.reports.archive import list_reports
    from alerts.reports.scheduler import run_due

    settings = loaded.settings.model_copy(update={"data_dir": tmp_path})
    first = run_due(settings, loaded.client, NOW)
    assert sorted((entry["kind"], entry["period"]) for entry in first) == [("operations", "monthly:2026-11"),
                                                                             ("periodic", "yearly:2026")]
    assert run_due(settings, loaded.client, NOW) == []  # issued once
    listed = list_reports(tmp_path / "reports")
    assert len(listed) == 2
    periodic = next(entry for entry in listed if entry["kind"] == "periodic")
    assert sorted(periodic["files"]) == ["html", "json", "pdf"]
    for item in periodic["files"].values():
        assert hashlib.sha256((tmp_path / "reports" / item["name"]).read_bytes()).hexdigest() == item["sha256"]
    assert (tmp_path / "reports" / "inventory" / f"{periodic['inventory_sha256']}.json").is_file()
