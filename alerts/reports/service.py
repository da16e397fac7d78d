"""The one way to make a report, for the CLI, the scheduler and the console: settings and a
client in, the report's data model out; then its bytes in a format; ``issue_report`` also
archives it with its digests (``archive_report``: an already made report, as ``socflow report
--issue`` has one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from elasticsearch import Elasticsearch

from alerts.reports import ReportError
from alerts.reports.archive import audit_trail, issue, previous_inventory
from alerts.reports.build import build_report, canonical_json
from alerts.reports.period import Period
from alerts.reports.scope import Inventory, parse_scope
from alerts.reports.sections.base import Context
from alerts.reports.sections.integrity import verify_trail
from ingest.normalize import resolve_config_path

if TYPE_CHECKING:
    from alerts.settings import Settings

FORMATS = ("json", "html", "pdf", "csv")


@dataclass(frozen=True)
class Request:
    """What a report is asked for."""

    kind: str
    period: Period
    scope: str | None = None
    lang: str = "vi"
    incident_id: str | None = None


def make_report(settings: Settings, client: Elasticsearch | None, request: Request, *, now: datetime,
                retention_file: Path | None = None, rules_dir: Path | None = None) -> dict[str, Any]:
    """The report's data model (see alerts.reports.build).

    ``rules_dir``: the project's rule directory (default: the repository's ``rules/``); tests pass
    a fixed one so their golden files do not change whenever the project gains a rule."""
    if request.lang not in ("vi", "en"):
        raise ReportError(f"unknown language {request.lang!r}; vi or en")
    inventory = Inventory.load(resolve_config_path(settings.collector.assets_path))
    scope = parse_scope(request.scope, inventory)
    policy_path = retention_file or resolve_config_path(Path("config/retention.yaml"))
    policy = yaml.safe_load(policy_path.read_text(encoding="utf-8")) if policy_path.is_file() else None
    ctx = Context(client=client, settings=settings.reports, period=request.period, scope=scope, inventory=inventory,
                  now=now, alerts_index=settings.elasticsearch.index_prefix,
                  events_index=settings.event_store.index_prefix, retention_policy=policy)
    ctx.audit_verdict = verify_trail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
    suppressions = [resolve_config_path(Path("config/suppressions.yaml")), settings.data_dir / "suppressions.yaml"]
    project_rules = rules_dir or resolve_config_path(Path("rules"))
    return build_report(request.kind, ctx, lang=request.lang, incident_id=request.incident_id,
                        previous_inventory=previous_inventory(settings.data_dir / "reports", inventory.digest),
                        rule_store=settings.rule_store_dir, suppression_files=suppressions,
                        rule_paths=_enabled_rules(settings, project_rules), project_rules=project_rules)


def _enabled_rules(settings: Settings, project_rules: Path) -> list[Path]:
    """The project's rules, and the imported release's active set where one was imported."""
    paths = [project_rules]
    active = settings.rule_store_dir / "active"
    return [*paths, active] if active.is_dir() else paths


def render(report: dict[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` (json, html, pdf, csv)."""
    if fmt == "json":
        return canonical_json(report).encode("utf-8")
    if fmt == "csv":
        from alerts.reports.render import render_csv

        return render_csv(report).encode("utf-8")
    if fmt in ("html", "pdf"):
        from alerts.reports.charts import charts_of
        from alerts.reports.render import render_html

        html = render_html(report, charts=charts_of(report), for_pdf=fmt == "pdf")
        if fmt == "html":
            return html.encode("utf-8")
        from alerts.reports.pdf import html_to_pdf

        return html_to_pdf(html)
    raise ReportError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def archive_report(settings: Settings, client: Elasticsearch | None, report: dict[str, Any], files: dict[str, bytes],
                   *, now: datetime, actor: str, audit: Any = None, source_ip: str | None = None) -> dict[str, Any]:
    """Archive ``files`` (format -> bytes) of ``report`` under ``<data-dir>/reports`` with their SHA-256s,
    recorded in ``audit`` (default: the trail of ``reports.audit_index``); the archive's entry."""
    inventory = Inventory.load(resolve_config_path(settings.collector.assets_path))
    trail = audit if audit is not None else audit_trail(client, settings.reports.audit_index,
                                                        settings.data_dir / "audit" / "chain-head")
    return issue(settings.data_dir / "reports", report, files, inventory=inventory.snapshot(), now=now, actor=actor,
                 audit=trail, source_ip=source_ip)


def issue_report(settings: Settings, client: Elasticsearch | None, request: Request, formats: tuple[str, ...], *,
                 now: datetime, actor: str, audit: Any = None,
                 source_ip: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make, render in each of ``formats`` and archive a report: (the report, its archive entry).

    What the scheduler and the console's "generate" run; ``socflow report --issue`` is the same
    ``make_report`` + ``render`` + ``archive_report``."""
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown or not formats:
        raise ReportError(f"unknown format {', '.join(unknown) or '(none)'}; one or more of {', '.join(FORMATS)}")
    report = make_report(settings, client, request, now=now)
    files = {fmt: render(report, fmt) for fmt in formats}
    entry = archive_report(settings, client, report, files, now=now, actor=actor, audit=audit, source_ip=source_ip)
    return report, entry
