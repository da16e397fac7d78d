"""Render a report's data model: HTML (Jinja2, autoescape: every string from logs is hostile),
CSV (one row per figure), and the charts embedded in the HTML as SVG."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from alerts.reports.texts import words

TEMPLATES = Path(__file__).with_name("templates")


def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    # One line per request, as it would be pasted into Kibana's console or curl.
    environment.filters["query"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    environment.filters["num"] = _number
    return environment


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", " ")
    return str(value)


def render_html(report: Mapping[str, Any], *, charts: Mapping[str, str] | None = None, for_pdf: bool = False) -> str:
    """The report as one self-contained HTML page (charts inline as SVG made by alerts.reports.charts)."""
    template = _environment().get_template("report.html")
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    # Each chart an image of its own (a data: URI): the SVGs' element ids (matplotlib's glyphs,
    # clip paths) cannot collide with each other's, and their styles stay out of the page's CSS.
    safe_charts = {name: Markup('<img class="chart" alt="{}" src="data:image/svg+xml;base64,{}">').format(
        name, base64.b64encode(svg.encode("utf-8")).decode("ascii")) for name, svg in (charts or {}).items()}
    return template.render(r=report, t=words(str(report["report"]["lang"])), css=Markup(css),  # noqa: S704
                           charts=safe_charts, for_pdf=for_pdf)


def csv_rows(report: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(section, figure path, value) for every scalar figure, source queries left out."""
    def walk(section: str, prefix: str, value: Any) -> Iterator[tuple[str, str, str]]:
        if isinstance(value, Mapping):
            for key in sorted(value):
                if key not in ("source_queries", "title"):
                    yield from walk(section, f"{prefix}.{key}" if prefix else str(key), value[key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(section, f"{prefix}[{index}]", item)
        else:
            yield section, prefix, "" if value is None else str(value)

    yield from walk("report", "", report["report"])
    for name in report["order"]:
        yield from walk(name, "", report["sections"][name])


def render_csv(report: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("section", "figure", "value"))
    for row in csv_rows(report):
        # A cell starting with = + - @ is a formula to a spreadsheet: log strings must stay text.
        writer.writerow(tuple("'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell for cell in row))
    return buffer.getvalue()
