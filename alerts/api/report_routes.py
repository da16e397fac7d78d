"""Issued reports in the console (issue 17): the archive, downloads, digests, and generating one.

- ``/reports`` (page) and ``GET /api/reports``: the archive's entries (``<data-dir>/reports/
  index.json``), newest first, each file's SHA-256 recomputed against the index and against the
  ``report.issue`` record of the console's audit trail. Every role reads them.
- ``GET /api/reports/{id}/files/{format}``: one archived file, as an attachment. Only what the
  index knows is served, looked up by id and format: no client-given path reaches the disk.
- ``POST /api/reports/jobs`` (and the page's form, ``POST /reports``): auditors and admins
  (``require_issue``) generate a report. The request is checked at once (period, scope,
  formats: a bad one is a 400 with the reason); the report is then made, rendered and archived
  by ``alerts.reports.service.issue_report`` — the scheduler's function, the same code as
  ``socflow report --issue`` — in a background thread, and ``GET /api/reports/jobs/{id}``
  says how it went (the page polls it). One job at a time per console: a report over a large
  index takes a minute of a core, and matplotlib's pyplot, which draws the charts, is not
  thread-safe. Shutting the console down waits for a running job (up to ``SHUTDOWN_WAIT_S``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from elasticsearch import ApiError, TransportError
from fastapi import APIRouter, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from alerts.api.context import Console, console
from alerts.api.security import IssueUser, ReadUser, client_address
from alerts.audit.trail import AuditError
from alerts.reports import ReportError, archive
from alerts.reports.period import Period, last_complete, parse_period
from alerts.reports.scope import Inventory, parse_scope
from alerts.reports.service import FORMATS, issue_report
from alerts.reports.service import Request as ReportRequest
from alerts.settings import Settings
from alerts.web.render import render
from ingest.logs import log_event
from ingest.normalize import resolve_config_path

LOGGER = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 120.0
KEPT_JOBS = 50
SCHEDULER = "socflow-scheduler"
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json",
               "csv": "text/csv; charset=utf-8"}
ReportId = Annotated[str, PathParam(max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
Format = Literal["html", "pdf", "json", "csv"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    jobs: ReportJobs | None = getattr(app.state, "report_jobs", None)
    if jobs is not None and not await asyncio.to_thread(jobs.wait, SHUTDOWN_WAIT_S):
        log_event(LOGGER, "report_job_abandoned", logging.WARNING, waited_s=SHUTDOWN_WAIT_S)


router = APIRouter(tags=["reports"], lifespan=_lifespan)


# --- generation jobs ---------------------------------------------------------------------------

@dataclass
class Job:
    """One generation: who asked what, and how it went."""

    id: str
    actor: str
    asked: dict[str, Any]
    started_at: datetime
    status: str = "running"  # running | done | failed
    finished_at: datetime | None = None
    report_id: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "actor": self.actor, "asked": self.asked, "status": self.status,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "report_id": self.report_id, "error": self.error, "notes": self.notes}


class JobBusyError(Exception):
    """A report is being generated already."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


class ReportJobs:
    """The generation jobs of one console process: one running at a time, the last ``KEPT_JOBS`` kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._thread: threading.Thread | None = None

    def start(self, actor: str, asked: dict[str, Any], now: datetime,
              work: Callable[[Job], None]) -> Job:
        with self._lock:
            running = next((job for job in self._jobs.values() if job.status == "running"), None)
            if running is not None:
                raise JobBusyError(running)
            job = Job(uuid.uuid4().hex[:16], actor, asked, now)
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
            self._thread = threading.Thread(target=work, args=(job,), name=f"report-{job.id}", daemon=True)
            self._thread.start()
            return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, timeout: float) -> bool:
        """Wait for the running job; False when it is still running after ``timeout`` seconds."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()


_JOBS_LOCK = threading.Lock()


def jobs_of(app: Any) -> ReportJobs:
    with _JOBS_LOCK:
        jobs: ReportJobs | None = getattr(app.state, "report_jobs", None)
        if jobs is None:
            jobs = app.state.report_jobs = ReportJobs()
        return jobs


class GenerateReport(BaseModel):
    """A report to generate and archive, asked as ``socflow report`` is."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["periodic", "operations", "incident"]
    period: str | None = Field(None, max_length=40, description="yearly:2026, monthly:2026-11 or weekly:2026-W48")
    start: str | None = Field(None, max_length=40, description="first day (YYYY-MM-DD, local) with `end`")
    end: str | None = Field(None, max_length=40, description="last day included (YYYY-MM-DD, local)")
    scope: str | None = Field(None, max_length=120, description="province (default), agency ID, district ID, node ID")
    lang: Literal["vi", "en"] = "vi"
    formats: list[Format] = Field(["html"], min_length=1, max_length=4)
    incident_id: str | None = Field(None, max_length=100, description="the incident of an incident report")


def prepare(settings: Settings, body: GenerateReport, now: datetime) -> tuple[ReportRequest, tuple[str, ...]]:
    """The service's request, checked before any work starts (ReportError with the reason)."""
    start, end = body.start or None, body.end or None
    if body.kind == "incident":
        if not (body.incident_id or "").strip():
            raise ReportError("an incident report needs the incident's id")
        if not (body.period or start or end):
            # As `socflow report incident`: the year up to now frames its alerts and records.
            start, end = (now - timedelta(days=366)).isoformat(), now.isoformat()
    period = parse_period(settings.reports, period=body.period or None, start=start, end=end)
    scope = (body.scope or "").strip() or None
    parse_scope(scope, Inventory.load(resolve_config_path(settings.collector.assets_path)))
    incident = ((body.incident_id or "").strip() or None) if body.kind == "incident" else None
    formats = tuple(dict.fromkeys(body.formats))
    return ReportRequest(body.kind, period, scope, body.lang, incident), formats


def _generate(state: Console, request: ReportRequest, formats: tuple[str, ...],
              source_ip: str) -> Callable[[Job], None]:
    def work(job: Job) -> None:
        try:
            report, entry = issue_report(state.settings, state.es, request, formats, now=state.clock(),
                                         actor=job.actor, audit=state.audit, source_ip=source_ip)
            job.notes = [f"{name}: {section['status']}" + (f" ({section['reason']})" if section.get("reason") else "")
                         for name in report["order"] if (section := report["sections"][name])["status"] != "ok"]
            job.report_id, job.status = entry["id"], "done"
        except ReportError as error:
            job.error, job.status = str(error), "failed"
        except AuditError as error:
            job.error, job.status = f"not issued: the audit record could not be written ({error})", "failed"
        except (TransportError, ApiError) as error:
            job.error, job.status = f"Elasticsearch failed while making the report ({type(error).__name__})", "failed"
        except Exception as error:  # noqa: BLE001 - the thread's boundary: say it failed rather than die silently
            log_event(LOGGER, "report_job_crashed", logging.ERROR, job=job.id, error=repr(error)[:500])
            job.error, job.status = f"internal error ({type(error).__name__}); see the console's log", "failed"
        job.finished_at = state.clock()
        log_event(LOGGER, "report_job_finished", job=job.id, actor=job.actor, status=job.status,
                  report=job.report_id, error=job.error)
    return work


def start_job(request: Request, user_name: str, body: GenerateReport) -> Job:
    """Check ``body`` and start its job (ReportError: bad request; JobBusyError: one is running)."""
    state = console(request)
    now = state.clock()
    report_request, formats = prepare(state.settings, body, now)
    asked = body.model_dump(exclude_none=True)
    return jobs_of(request.app).start(user_name, asked, now,
                                      _generate(state, report_request, formats, client_address(request)))


def _busy_text(job: Job) -> str:
    return f"a report is being generated (job {job.id}, asked by {job.actor}); try again when it has finished"


# --- the archive -------------------------------------------------------------------------------

def _root(state: Console) -> Path:
    return state.settings.data_dir / "reports"


def _audit_records(state: Console, entries: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """report id -> its ``report.issue`` record in the console's trail (by the entry's ``audit_seq``,
    a real-time get: a report issued a moment ago is found); or why the trail could not be read."""
    wanted = {str(entry["audit_seq"]): str(entry.get("id")) for entry in entries
              if isinstance(entry.get("audit_seq"), int)}
    if not wanted:
        return {}, None
    try:
        answer = state.es.options(ignore_status=404).mget(index=state.audit.index, ids=sorted(wanted))
    except (TransportError, ApiError) as error:
        return {}, f"the audit trail could not be read ({type(error).__name__})"
    found = {}
    for doc in answer.get("docs", []):
        record = doc.get("_source") if doc.get("found") else None
        report_id = wanted.get(str(doc.get("_id")))
        # A record of another report or action (an index issued into another trail): not this report's.
        if record and report_id and (record.get("action"), record.get("target")) == ("report.issue",
                                                                                    f"report:{report_id}"):
            found[report_id] = record
    return found, None


def describe(state: Console, entry: dict[str, Any], audit: dict[str, dict[str, Any]],
             audit_problem: str | None) -> dict[str, Any]:
    """An archive entry with its files verified: what the page and ``GET /api/reports`` show."""
    zone = ZoneInfo(state.settings.reports.timezone)
    verified = archive.verify(_root(state), entry)
    record = audit.get(str(entry.get("id")))
    recorded = record.get("after") if record else None
    files = []
    for fmt, item in sorted(entry.get("files", {}).items()):
        check = verified[fmt]
        audit_sha = recorded.get(fmt) if isinstance(recorded, dict) else None
        problem = check["reason"]
        if problem is None and audit_sha is not None and audit_sha != item.get("sha256"):
            problem = "digest differs from the audit record"
        files.append({"format": fmt, "sha256": item.get("sha256"), "bytes": item.get("bytes"),
                      "actual_sha256": check["sha256"], "ok": problem is None, "problem": problem,
                      "audited": audit_sha is not None,
                      "url": f"/api/reports/{entry.get('id')}/files/{fmt}"})
    issued = datetime.fromisoformat(str(entry["issued_at"]))
    if record is not None:
        audit_text = f"audit record #{record.get('seq')}"
    elif audit_problem:
        audit_text = audit_problem
    elif entry.get("audit_seq") is not None:
        audit_text = f"audit record #{entry['audit_seq']} of this report not found in {state.audit.index}"
    else:
        audit_text = f"issued without an audit record in {state.audit.index}"
    return {"id": entry.get("id"), "kind": entry.get("kind"), "title": entry.get("title"),
            "period": entry.get("period"), "scope": entry.get("scope"), "lang": entry.get("lang"),
            "issued_at": entry.get("issued_at"), "issued_local": issued.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "issued_by": entry.get("issued_by"), "by_scheduler": entry.get("issued_by") == SCHEDULER,
            "files": files, "verified": all(f["ok"] for f in files), "audit": audit_text,
            "audit_seq": record.get("seq") if record else None}


def listing(state: Console) -> list[dict[str, Any]]:
    entries = archive.list_reports(_root(state))
    audit, problem = _audit_records(state, entries)
    return [describe(state, entry, audit, problem) for entry in entries]


# --- JSON API ----------------------------------------------------------------------------------

@router.get("/api/reports")
def list_reports(request: Request, user: ReadUser) -> dict[str, Any]:
    """Issued reports, newest first, each file's digest recomputed (``ok``) and compared with its audit record."""
    return {"reports": listing(console(request))}


@router.get("/api/reports/jobs/{job_id}")
def job_status(request: Request, user: ReadUser,
               job_id: Annotated[str, PathParam(max_length=32, pattern=r"^[0-9a-f]+$")]) -> dict[str, Any]:
    """A generation job: ``running``, ``done`` (with ``report_id``) or ``failed`` (with ``error``)."""
    job = jobs_of(request.app).get(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail="no such job in this console (jobs are kept in memory)")
    return job.as_dict()


@router.post("/api/reports/jobs", status_code=202)
def generate(request: Request, user: IssueUser, body: GenerateReport) -> Any:
    """Generate and archive a report in the background (auditors, admins); poll the job's status."""
    try:
        job = start_job(request, user.name, body)
    except ReportError as error:
        return JSONResponse({"detail": str(error), "reason": "invalid_report_request"}, status_code=400)
    except JobBusyError as busy:
        return JSONResponse({"detail": _busy_text(busy.job), "reason": "report_job_running",
                             "job": busy.job.as_dict()}, status_code=409)
    return job.as_dict()


@router.get("/api/reports/{report_id}/files/{fmt}")
def download(request: Request, user: ReadUser, report_id: ReportId, fmt: Format) -> Response:
    """One archived file as an attachment (its index digest in ``X-Socflow-SHA256``)."""
    root = _root(console(request))
    entry = archive.find(root, report_id)
    path = archive.file_path(root, entry, fmt) if entry is not None else None
    if entry is None or path is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no {fmt} file of report {report_id!r} in the archive")
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=path.name, content_disposition_type="attachment",
                        headers={"X-Socflow-SHA256": str(entry["files"][fmt].get("sha256", ""))})


@router.get("/api/reports/{report_id}")
def report_entry(request: Request, user: ReadUser, report_id: ReportId) -> dict[str, Any]:
    """One issued report with its files verified now."""
    state = console(request)
    entry = archive.find(_root(state), report_id)
    if entry is None:
        raise HTTPException(status_code=404, detail=f"no report {report_id!r} in the archive")
    audit, problem = _audit_records(state, [entry])
    return describe(state, entry, audit, problem)


# --- the page ----------------------------------------------------------------------------------

def _suggested_periods(state: Console) -> list[str]:
    now, settings = state.clock(), state.settings.reports
    found: list[Period] = [last_complete(settings, kind, now) for kind in ("monthly", "yearly", "weekly")]
    return [period.label for period in found]


def _scopes(state: Console) -> list[str]:
    inventory = Inventory.load(resolve_config_path(state.settings.collector.assets_path))
    nodes = inventory.assets.nodes
    return ["province", *(f"district {d}" for d in sorted({n.district for n in nodes})),
            *(f"agency {a}" for a in sorted({n.agency for n in nodes}))]


def _page(request: Request, *, job: Job | None = None, error: str = "", form: dict[str, Any] | None = None,
          status_code: int = 200) -> Response:
    state = console(request)
    user = getattr(request.state, "user", None)
    return render(request, "reports.html", {
        "title": "Reports", "reports": listing(state), "job": job, "error": error,
        "may_issue": user is not None and user.role in ("auditor", "admin"),
        "form": form or {"kind": "operations", "period": "", "start": "", "end": "", "scope": "province",
                         "lang": "vi", "formats": ["html"], "incident_id": ""},
        "periods": _suggested_periods(state), "scopes": _scopes(state), "formats": FORMATS,
        "timezone": state.settings.reports.timezone,
    }, status_code=status_code)


@router.get("/reports", include_in_schema=False)
def reports_page(request: Request, user: ReadUser,
                 job: Annotated[str, Query(max_length=32, pattern=r"^[0-9a-f]*$")] = "") -> Response:
    return _page(request, job=jobs_of(request.app).get(job) if job else None)


@router.post("/reports", include_in_schema=False)
def reports_generate(request: Request, user: IssueUser, *,
                     kind: Annotated[str, Form(max_length=20)],
                     period: Annotated[str, Form(max_length=40)] = "",
                     start: Annotated[str, Form(max_length=40)] = "",
                     end: Annotated[str, Form(max_length=40)] = "",
                     scope: Annotated[str, Form(max_length=120)] = "",
                     lang: Annotated[str, Form(max_length=5)] = "vi",
                     formats: Annotated[list[str] | None, Form()] = None,
                     incident_id: Annotated[str, Form(max_length=100)] = "") -> Response:
    """The page's form (works without script): start the job, then show the page with its status."""
    form = {"kind": kind, "period": period, "start": start, "end": end, "scope": scope, "lang": lang,
            "formats": formats or [], "incident_id": incident_id}
    try:
        body = GenerateReport.model_validate({**form, "formats": formats or []})
    except ValueError as invalid:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                            for e in getattr(invalid, "errors", list)())
        return _page(request, error=f"The report was not started: {reasons or invalid}", form=form, status_code=400)
    try:
        job = start_job(request, user.name, body)
    except ReportError as error:
        return _page(request, error=f"The report was not started: {error}", form=form, status_code=400)
    except JobBusyError as busy:
        return _page(request, error=f"The report was not started: {_busy_text(busy.job)}.", job=busy.job, form=form,
                     status_code=409)
    return RedirectResponse(f"/reports?job={job.id}", status_code=303)
