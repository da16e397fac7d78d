"""Auditors' reports (issue 17): periodic, operations and incident reports with their evidence.

Layers, one way: ``period``/``scope`` (pure: what is reported on) -> ``sections/`` (one module per
section, each an Elasticsearch request it records as its source query, core aggregations only)
-> ``build`` (the report as a data model, canonical JSON, clock passed in) -> ``render_*``
(HTML through Jinja2 with autoescape, CSV, charts, PDF). The CLI (``alerts.commands.report``)
and the console call ``build.build_report`` and a renderer, nothing else.
"""

from __future__ import annotations

from alerts.errors import AlertsError


class ReportError(AlertsError):
    """A report cannot be made as asked (bad period, unknown scope id, unknown incident)."""
