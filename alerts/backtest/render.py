"""A backtest's result for people: a terminal report (rich tables of escaped text), JSON, and a
self-contained HTML page (Jinja2 with autoescape, the chart an inline SVG image).

Every string that came from an event (field values, host names, the sample events) is hostile:
on the terminal it goes through ``alerts.hunt.display.safe`` into ``rich.text.Text`` cells
(never markup), in JSON it is ASCII-escaped, in HTML autoescaped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from alerts.backtest.model import BacktestResult, BaselineDiff, RuleReport, Top
from alerts.hunt.display import safe, table

TEMPLATES = Path(__file__).with_name("templates")
CHART_RULES = 8  # rules drawn in the chart (the tables list them all)
MAX_CHART_DAYS = 400  # beyond this the chart shows only the days with hits


def to_json(result: BacktestResult, *, ids: bool = False) -> str:
    """Canonical JSON (sorted keys, ASCII: a log's escape sequences stay inert)."""
    return json.dumps(result.as_dict(ids=ids), sort_keys=True, ensure_ascii=True, indent=1) + "\n"


# ------------------------------------------------------------------ terminal


def _top_rows(name: str, top: Top) -> Iterable[tuple[str, str, int]]:
    for value, hits in top.top:
        yield name, value, hits
    if top.other_hits:
        yield name, f"({top.distinct - len(top.top)} other values{', capped' if top.capped else ''})", top.other_hits


def summary_line(event: dict[str, Any], limit: int = 160) -> str:
    """One line of a sample event: its compact JSON, cut (the full event is in JSON and HTML)."""
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"))[:limit]


def print_report(result: BacktestResult, out: Console) -> None:
    """The result as rich tables (cells are escaped ``Text``)."""
    window = f"{result.start or 'beginning'} .. {result.end or 'end'}"
    head = (f"{result.source}; {window}; {result.events_read} events read"
            + (f" ({result.candidates} pre-selected)" if result.candidates is not None else "")
            + (f", {result.dead_letters} dead letters" if result.dead_letters else "")
            + f"; days in {result.timezone}")
    out.print(Text(safe(head, 2000)))
    out.print(table("hits per rule", ("rule", "kind", "level", "hits", "suppressed", "alerts"),
                    ([r.spec.title, r.spec.kind, r.spec.level, r.hits, r.suppressed, r.alerts] for r in result.rules)))
    for rule in result.rules:
        _print_rule(rule, out)
    for diff in result.baselines:
        _print_diff(diff, out)


def _print_rule(rule: RuleReport, out: Console) -> None:
    title = f"{rule.spec.title} — {rule.hits} hit(s)"
    out.print()
    out.print(Text(safe(f"{title}: {rule.spec.role} {rule.spec.pair or rule.spec.id}, {rule.spec.path}", 1000)))
    if not rule.hits:
        return
    out.print(table("hits per day", ("day", "hits"), rule.days))
    where = [*_top_rows("node", rule.nodes), *_top_rows("agency", rule.agencies), *_top_rows("host", rule.hosts)]
    out.print(table("where", ("by", "value", "hits"), where))
    values = [row for name, top in rule.fields.items() for row in _top_rows(name, top)]
    if values:
        out.print(table("top values of the rule's fields", ("field", "value", "hits"), values))
    _print_samples("samples", rule.samples, out)


def _print_samples(title: str, samples: Sequence[dict[str, Any]], out: Console) -> None:
    if samples:
        out.print(table(title, ("time", "event id", "node", "host", "values of the rule's fields"),
                        ([s["time"], s.get("event_id") or f"{s.get('events', 0)} events", s["node"], s["host"],
                          _shown_fields(s)] for s in samples)))


def _shown_fields(sample: dict[str, Any]) -> str:
    """``field=value`` of a sample (a correlation: its group), or the start of its event."""
    if sample.get("group"):  # a correlation's fields are its group-by fields
        pairs = [f"{name}={value}" for name, value in sample["group"].items()]
    else:
        pairs = [f"{name}={value}" for name, values in (sample.get("fields") or {}).items() for value in values]
    return "; ".join(pairs) if pairs else summary_line(sample["event"], 100)


def _print_diff(diff: BaselineDiff, out: Console) -> None:
    out.print()
    out.print(Text(safe(f"baseline of {diff.title}: {diff.old_path}", 1000)))
    out.print(table("old and new version", ("old hits", "new hits", "unchanged", "added", "removed"),
                    [(diff.old_hits, diff.new_hits, diff.unchanged, diff.added, diff.removed)]))
    _print_samples("added: only the new version hits", diff.added_samples, out)
    _print_samples("removed: only the old version hits", diff.removed_samples, out)


# ------------------------------------------------------------------ HTML


def _days(result: BacktestResult, reports: Sequence[RuleReport]) -> list[str]:
    """The chart's days: every day from the first to the last with hits (a sparse list past
    ``MAX_CHART_DAYS``)."""
    seen = sorted({day for rule in reports for day, _hits in rule.days if day != "unknown"})
    if not seen:
        return []
    first, last = date.fromisoformat(seen[0]), date.fromisoformat(seen[-1])
    if (last - first).days > MAX_CHART_DAYS:
        return seen
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def chart(result: BacktestResult) -> str | None:
    """Hits per day and rule as grouped bars (SVG, the reports' matplotlib style)."""
    reports = [rule for rule in result.rules if rule.hits][:CHART_RULES]
    days = _days(result, reports)
    if not days:
        return None
    from alerts.reports.charts import _svg, plt

    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    width = 0.85 / len(reports)
    # A baseline takes its candidate's colour, hatched.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {rule.spec.id: palette[index % len(palette)]
               for index, rule in enumerate(r for r in result.rules if r.spec.role == "candidate")}
    for index, rule in enumerate(reports):
        counts = dict(rule.days)
        baseline = rule.spec.role == "baseline"
        axes.bar([position + index * width for position in range(len(days))], [counts.get(day, 0) for day in days],
                 width=width, label=safe(rule.spec.title, 60), hatch="//" if baseline else None,
                 color=colours.get(rule.spec.pair if baseline else rule.spec.id),
                 edgecolor="white" if baseline else None)
    step = max(1, len(days) // 12)
    axes.set_xticks([position + 0.425 - width / 2 for position in range(len(days))][::step], days[::step],
                    rotation=30, ha="right")
    axes.set_ylabel(f"hits per day ({result.timezone})")
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.35), ncol=2)
    return str(_svg(figure))


def pretty(value: Any) -> str:
    """Indented JSON of an event, line by line through ``safe`` (its line breaks are kept)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)
    return "\n".join(safe(line, 1 << 20) for line in text.split("\n"))


def render_html(result: BacktestResult) -> str:
    """The whole result as one HTML page with no external resource."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    # Autoescape makes a log's markup inert; ``safe`` also shows control, bidi and invisible
    # characters (a U+202E in a host name would reorder the text around it) as escapes.
    environment.filters["pretty"] = pretty
    environment.filters["safe_text"] = lambda value: safe(value, 2000)
    svg = chart(result)
    image = None if svg is None else Markup('<img class="chart" alt="hits per day" src="data:image/svg+xml;base64,{}">'
                                            ).format(base64.b64encode(svg.encode("utf-8")).decode("ascii"))
    css = (TEMPLATES / "backtest.css").read_text(encoding="utf-8")
    return environment.get_template("backtest.html").render(r=result, chart=image, css=Markup(css))  # noqa: S704
