"""Issued reports in the console (issue 17): listing, downloads, digests, generation, roles.

A small generated year of alerts and incidents (``alerts.yeardata``) is loaded once into the real test Elasticsearch
under a unique prefix; the console's audit trail is the reports' trail (one index). Reports are
generated through the console's job (the scheduler's ``issue_report``) and read back from the
archive on disk, the audit index and the HTTP answers. The browser test drives Debian's
Chromium: an auditor generates an operations report, sees it listed and downloads it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from alerts import yeardata
from alerts.api.app import create_app
from alerts.api.report_routes import Job, JobBusyError, ReportJobs
from alerts.indexer import install_template
from alerts.settings import Settings, load_settings
from ingest.assets import AssetInventory
from ingest.normalize import resolve_config_path
from tests.console.conftest import PASSWORD, bearer, free_port, make_user, serve_in_thread

pytestmark = pytest.mark.integration
YEAR = yeardata.Year(alerts=400, incidents=3)
NOW = datetime(2026, 12, 16, 2, 0, tzinfo=UTC)  # the day after the yearly period: November is complete
OPERATIONS = {"kind": "operations", "period": "monthly:2026-11", "lang": "en"}


@dataclass
class Loaded:
    client: Elasticsearch
    url: str
    prefix: str


@pytest.fixture(scope="module")
def loaded(elasticsearch_url: str) -> Iterator[Loaded]:
    prefix = f"t-console-reports-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    settings = settings_for(Path("/nonexistent"), elasticsearch_url, prefix)
    inventory = AssetInventory.load(resolve_config_path(settings.collector.assets_path))
    install_template(client, settings.elasticsearch.index_prefix)
    client.indices.create(index=settings.reports.incidents_index, mappings={"dynamic": False, "properties": {
        "id": {"type": "keyword"}, "detected_at": {"type": "date"}, "reported_at": {"type": "date"},
        "nodes": {"type": "keyword"}, "agencies": {"type": "keyword"}, "alerts": {"type": "keyword"}}})
    # One alert index (a name the template matches) instead of one a month, and no event store
    # (the coverage section says "not available"): each index created costs the shared cluster
    # a second or more.
    alerts_index = f"{prefix}-alerts-2026.01"
    yeardata.bulk_load(client, ((alerts_index, i, doc) for _, i, doc in
                                yeardata.alerts(YEAR, inventory, settings.elasticsearch.index_prefix)))
    yeardata.bulk_load(client, yeardata.incidents(YEAR, inventory, settings.reports.incidents_index))
    client.indices.refresh(index=f"{prefix}-*")
    try:
        yield Loaded(client, elasticsearch_url, prefix)
    finally:
        names = sorted(client.indices.get(index=f"{prefix}-*", expand_wildcards="all", allow_no_indices=True))
        for start in range(0, len(names), 50):
            client.indices.delete(index=",".join(names[start:start + 50]))
        client.options(ignore_status=404).indices.delete_index_template(name=settings.elasticsearch.index_prefix)
        client.close()


def settings_for(data_dir: Path, url: str, prefix: str) -> Settings:
    return load_settings(data_dir=data_dir, elasticsearch={"url": url, "index_prefix": f"{prefix}-alerts"},
                         event_store={"index_prefix": f"{prefix}-events", "deadletter_prefix": f"{prefix}-dead"},
                         console={"audit_index": f"{prefix}-audit"},
                         reports={"audit_index": f"{prefix}-audit", "incidents_index": f"{prefix}-incidents"})


@pytest.fixture
def report_settings(loaded: Loaded, tmp_path: Path) -> Iterator[Settings]:
    settings = settings_for(tmp_path / "data", loaded.url, loaded.prefix)
    yield settings
    # Each test's audit chain starts afresh (its head file is in the test's data dir).
    loaded.client.indices.delete(index=settings.console.audit_index, ignore_unavailable=True)


@pytest.fixture
def api(report_settings: Settings) -> Iterator[TestClient]:
    app = create_app(report_settings, clock=lambda: NOW)
    with TestClient(app) as test_client:  # leaving waits for a running job (the router's lifespan)
        yield test_client


def tokens(settings: Settings) -> dict[str, dict[str, str]]:
    for role in ("analyst", "auditor", "admin"):
        make_user(settings, f"the-{role}", role)
    return {role: bearer(settings, f"the-{role}") for role in ("analyst", "auditor", "admin")}


def wait_for(api: TestClient, job_id: str, headers: dict[str, str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/reports/jobs/{job_id}", headers=headers).json()
        if job["status"] != "running":
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_generate_list_download_and_verify(api: TestClient, report_settings: Settings, loaded: Loaded) -> None:
    role = tokens(report_settings)
    answer = api.post("/api/reports/jobs", headers=role["auditor"], json={**OPERATIONS, "formats": ["json", "csv"]})
    assert answer.status_code == 202, answer.text
    job = wait_for(api, answer.json()["id"], role["analyst"])  # any role may follow a job
    assert job["status"] == "done", job
    assert job["actor"] == "the-auditor"

    listed = api.get("/api/reports", headers=role["analyst"]).json()["reports"]
    assert [r["id"] for r in listed] == [job["report_id"]]
    entry = listed[0]
    assert (entry["kind"], entry["period"], entry["scope"], entry["lang"]) == (
        "operations", "monthly:2026-11", "province", "en")
    assert entry["issued_by"] == "the-auditor" and not entry["by_scheduler"]
    assert entry["issued_local"] == "2026-12-16 09:00"  # Asia/Ho_Chi_Minh
    assert entry["verified"] and entry["audit_seq"] is not None
    assert [f["format"] for f in entry["files"]] == ["csv", "json"]  # HTML: the browser test

    # The audit trail holds each file's digest; the downloads are those bytes.
    loaded.client.indices.refresh(index=report_settings.console.audit_index)
    records = loaded.client.search(index=report_settings.console.audit_index,
                                   query={"term": {"action": "report.issue"}})["hits"]["hits"]
    assert len(records) == 1
    record = records[0]["_source"]
    assert (record["actor"], record["target"], record["source_ip"]) == (
        "the-auditor", f"report:{entry['id']}", "testclient")
    media = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
    for item in entry["files"]:
        download = api.get(item["url"], headers=role["analyst"])
        assert download.status_code == 200
        assert download.headers["content-type"] == media[item["format"]]
        assert download.headers["content-disposition"] == f'attachment; filename="{entry["id"]}.{item["format"]}"'
        digest = hashlib.sha256(download.content).hexdigest()
        assert digest == item["sha256"] == record["after"][item["format"]]
        assert len(download.content) == item["bytes"]
    body = json.loads(api.get(f"/api/reports/{entry['id']}/files/json", headers=role["auditor"]).content)
    assert body["report"]["kind"] == "operations" and body["report"]["lang"] == "en"

    # Verify: a changed file is a mismatch; a file and index changed together still disagree with the trail.
    root = report_settings.data_dir / "reports"
    (root / f"{entry['id']}.csv").write_bytes(b"forged,1\n")
    after = api.get(f"/api/reports/{entry['id']}", headers=role["auditor"]).json()
    csv = next(f for f in after["files"] if f["format"] == "csv")
    assert not after["verified"] and csv["problem"] == "digest differs from the index"
    index = json.loads((root / "index.json").read_text())
    index["reports"][0]["files"]["csv"]["sha256"] = hashlib.sha256(b"forged,1\n").hexdigest()
    (root / "index.json").write_text(json.dumps(index))
    after = api.get(f"/api/reports/{entry['id']}", headers=role["auditor"]).json()
    csv = next(f for f in after["files"] if f["format"] == "csv")
    assert not after["verified"] and csv["problem"] == "digest differs from the audit record"
    page = api.get("/reports", headers={**role["auditor"], "Accept": "text/html"})
    assert "mismatch" in page.text and "digest differs from the audit record" in page.text


def test_only_what_the_index_knows_is_served(api: TestClient, report_settings: Settings) -> None:
    role = tokens(report_settings)
    root = report_settings.data_dir / "reports"
    root.mkdir(parents=True)
    secret = report_settings.console_dir / "users.json"
    assert secret.is_file()
    (root / "real.json").write_bytes(b"{}\n")
    (root / "real.pdf").write_bytes(b"%PDF-1.7\n")
    # An edited index naming files outside the archive: never served.
    entries = [{"id": "evil", "kind": "operations", "title": "t", "period": "p", "scope": "province",
                "issued_at": NOW.isoformat(), "issued_by": "x",
                "files": {"json": {"name": "../console/users.json", "sha256": "0", "bytes": 1},
                          "csv": {"name": str(secret), "sha256": "0", "bytes": 1},
                          "html": {"name": "..", "sha256": "0", "bytes": 1}}},
               {"id": "real", "kind": "operations", "title": "t", "period": "p", "scope": "province",
                "issued_at": NOW.isoformat(), "issued_by": "x",
                "files": {"json": {"name": "real.json", "sha256": hashlib.sha256(b"{}\n").hexdigest(), "bytes": 3},
                          "pdf": {"name": "real.pdf", "sha256": hashlib.sha256(b"%PDF-1.7\n").hexdigest(),
                                  "bytes": 9}}}]
    (root / "index.json").write_text(json.dumps({"reports": entries}))
    headers = role["auditor"]
    assert api.get("/api/reports/real/files/json", headers=headers).content == b"{}\n"
    pdf = api.get("/api/reports/real/files/pdf", headers=headers)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content == b"%PDF-1.7\n"
    assert pdf.headers["content-disposition"] == 'attachment; filename="real.pdf"'
    for path in ("/api/reports/evil/files/json", "/api/reports/evil/files/csv", "/api/reports/evil/files/html",
                 "/api/reports/real/files/csv", "/api/reports/..%2Fconsole%2Fusers.json/files/json",
                 "/api/reports/%2e%2e/files/json", "/api/reports/real/files/..%2F..%2Fconsole%2Fusers.json",
                 "/api/reports/nope/files/json", "/api/reports/real.json/files/json"):
        answer = api.get(path, headers=headers)
        assert answer.status_code in (404, 422), (path, answer.status_code)
        assert b"argon2" not in answer.content, path
    listed = {r["id"]: r for r in api.get("/api/reports", headers=headers).json()["reports"]}
    assert listed["real"]["verified"] and not listed["evil"]["verified"]
    assert {f["problem"] for f in listed["evil"]["files"]} == {"file missing from the archive"}


def test_bad_requests_say_why_and_roles(api: TestClient, report_settings: Settings) -> None:
    role = tokens(report_settings)
    refused = {
        "unknown agency id 'nowhere'": {**OPERATIONS, "scope": "agency nowhere"},
        "not a period: 'monthly:2026-13'": {**OPERATIONS, "period": "monthly:2026-13"},
        "needs --period KIND:WHEN or both --from and --to": {"kind": "periodic"},
        "an incident report needs the incident's id": {"kind": "incident"},
    }
    for reason, body in refused.items():
        answer = api.post("/api/reports/jobs", headers=role["admin"], json=body)
        assert answer.status_code == 400 and reason in answer.json()["detail"], (body, answer.text)
    assert api.post("/api/reports/jobs", headers=role["analyst"], json=OPERATIONS).status_code == 403
    assert api.post("/api/reports/jobs", headers=role["auditor"], json={**OPERATIONS, "formats": []}).status_code == 422
    # An unknown incident is found out by the job: it fails with the reason, nothing archived.
    answer = api.post("/api/reports/jobs", headers=role["auditor"],
                      json={"kind": "incident", "incident_id": "INC-404", "formats": ["json"]})
    job = wait_for(api, answer.json()["id"], role["auditor"])
    assert job["status"] == "failed" and "unknown incident 'INC-404'" in job["error"], job
    page = api.get(f"/reports?job={job['id']}", headers={**role["auditor"], "Accept": "text/html"})
    assert "The report could not be made" in page.text and "unknown incident" in page.text
    assert api.get("/api/reports", headers=role["auditor"]).json()["reports"] == []
    # The page's form (no script) shows the reason, keeps the values, starts nothing.
    form = api.post("/reports", headers={**role["admin"], "Accept": "text/html"},
                    data={"kind": "operations", "period": "monthly:2026-11", "scope": "district nowhere",
                          "formats": ["html"]})
    assert form.status_code == 400
    assert "The report was not started: unknown district id" in form.text and 'value="district nowhere"' in form.text
    analyst_page = api.get("/reports", headers={**role["analyst"], "Accept": "text/html"})
    assert analyst_page.status_code == 200 and "Generate a report" not in analyst_page.text


def test_one_job_at_a_time() -> None:
    jobs, release, started = ReportJobs(), threading.Event(), threading.Event()

    def work(job: Job) -> None:
        started.set()
        release.wait(10)
        job.status = "done"

    first = jobs.start("aud", {}, NOW, work)
    started.wait(10)
    with pytest.raises(JobBusyError) as busy:
        jobs.start("root", {}, NOW, work)
    assert busy.value.job is first
    assert not jobs.wait(0.05)
    release.set()
    assert jobs.wait(10) and jobs.get(first.id) is first and first.status == "done"
    assert jobs.start("root", {}, NOW, lambda job: None).id != first.id


def test_auditor_generates_lists_and_downloads_in_the_browser(report_settings: Settings, page: Any,
                                                               screenshot_dir: Path, tmp_path: Path) -> None:
    make_user(report_settings, "aud", "auditor")
    app = create_app(report_settings, clock=lambda: NOW)
    port = free_port()
    stop = serve_in_thread(app, port)
    url = f"http://127.0.0.1:{port}"
    try:
        page.goto(url + "/login")
        page.get_by_label("User name").fill("aud")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(url + "/")
        page.get_by_role("link", name="Reports").first.click()
        page.wait_for_url(url + "/reports")
        assert page.get_by_role("heading", level=1).inner_text() == "Reports"
        assert "No report has been issued yet." in page.locator("table.reports").inner_text()
        # Keyboard only: the form's fields in order, then the submit button.
        page.get_by_label("Kind").focus()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.type("monthly:2026-11")
        assert page.get_by_label("Period").input_value() == "monthly:2026-11"
        page.get_by_label("Language").select_option("en")  # HTML is ticked by default
        page.get_by_role("button", name="Generate and issue").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/reports?job=*")
        status = page.locator("#job-status")
        status.locator("text=Report issued").wait_for(timeout=90_000)  # polled, then reloaded by reports.js
        row = page.locator("table.reports tbody tr").first
        assert "monthly:2026-11" in row.inner_text() and "aud" in row.inner_text()
        assert "match" in row.locator(".verify").inner_text()
        page.screenshot(path=str(screenshot_dir / "reports.png"), full_page=True)
        with page.expect_download() as info:
            row.get_by_role("link", name="Download the HTML", exact=False).focus()
            page.keyboard.press("Enter")
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.suffix == ".html" and b"SOC operations report" in saved.read_bytes()
        listed = json.loads((report_settings.data_dir / "reports" / "index.json").read_text())["reports"][0]
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == listed["files"]["html"]["sha256"]
        assert not page.console_errors, page.console_errors
    finally:
        stop()
        app.state.report_jobs.wait(60)
