"""Charts of a report as vector SVG (matplotlib, Agg, text drawn as paths so the SVG needs no
font and carries no string as markup): alerts over time by level, agency x week heat map,
time-to-acknowledge and time-to-close distribution, events per node, ATT&CK tactics."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
mpl.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "socflow", "font.size": 8,
                     "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False})

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

LEVEL_COLOURS = {"critical": "#7f0000", "high": "#d7301f", "medium": "#fc8d59", "low": "#fdcc8a",
                 "informational": "#bdbdbd"}


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    # No date in the SVG's metadata: the same report gives the same bytes.
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def over_time(monitoring: Mapping[str, Any]) -> str | None:
    rows = monitoring.get("over_time") or []
    if not rows or not monitoring.get("total"):
        return None
    figure, axes = plt.subplots(figsize=(7.5, 2.6))
    bottom = [0] * len(rows)
    positions = range(len(rows))
    for level in ("informational", "low", "medium", "high", "critical"):
        values = [row.get(level, 0) for row in rows]
        axes.bar(positions, values, bottom=bottom, color=LEVEL_COLOURS[level], label=level, width=0.85)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    step = max(1, len(rows) // 12)
    axes.set_xticks(list(positions)[::step], [row["start"] for row in rows][::step], rotation=30, ha="right")
    axes.set_ylabel(f"alerts per {monitoring.get('interval', 'day')}")
    axes.legend(ncol=5, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, 1.18))
    return _svg(figure)


def heatmap(monitoring: Mapping[str, Any]) -> str | None:
    heat = monitoring.get("heatmap") or {}
    rows, weeks = heat.get("rows") or [], heat.get("weeks") or []
    if not rows or not weeks:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 0.6 + 0.17 * len(rows)))
    image = axes.imshow([row["weeks"] for row in rows], aspect="auto", cmap="OrRd", interpolation="nearest")
    axes.set_yticks(range(len(rows)), [row["agency"] for row in rows], fontsize=6)
    step = max(1, len(weeks) // 13)
    axes.set_xticks(range(0, len(weeks), step), weeks[::step], rotation=30, ha="right", fontsize=6)
    axes.set_xlabel("week (Monday)")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.01, label="alerts")
    return _svg(figure)


def _barh(labels: list[str], values: list[float], xlabel: str, colour: str) -> str:
    figure, axes = plt.subplots(figsize=(7.5, 0.5 + 0.2 * len(labels)))
    axes.barh(range(len(labels)), values, color=colour)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    return _svg(figure)


def tactics(monitoring: Mapping[str, Any]) -> str | None:
    found = monitoring.get("by_tactic") or []
    if not found:
        return None
    return _barh([item["key"] for item in found], [item["alerts"] for item in found], "alerts by ATT&CK tactic",
                 "#3182bd")


def attack(section: Mapping[str, Any]) -> str | None:
    found = section.get("tactics") or {}
    if not found:
        return None
    return _barh(list(found), list(found.values()), "techniques covered by enabled rules, per tactic", "#08519c")


def response(section: Mapping[str, Any]) -> str | None:
    """Time to acknowledge beside time to close, alerts per duration bucket (same buckets)."""
    closing = (section.get("alerts") or {}).get("close_distribution_h") or []
    acking = (section.get("time_to_acknowledge") or {}).get("distribution_h") or []
    if not any(row["alerts"] for row in (*closing, *acking)):
        return None
    labels = [row["bucket"] for row in closing or acking]
    figure, axes = plt.subplots(figsize=(7.5, 2.2))
    width = 0.4
    series = (("acknowledge", acking, "#9e9ac8", -width / 2), ("close", closing, "#54278f", width / 2))
    for name, rows, colour, shift in series:
        if rows:
            axes.bar([i + shift for i in range(len(rows))], [row["alerts"] for row in rows], width=width,
                     color=colour, label=f"time to {name}")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylabel("alerts")
    axes.set_xlabel("time from the alert")
    axes.legend(fontsize=7, frameon=False)
    return _svg(figure)


def coverage(section: Mapping[str, Any]) -> str | None:
    nodes = sorted(section.get("nodes") or [], key=lambda n: -n["events"])[:30]
    if not nodes:
        return None
    silent = {item["node"] for item in section.get("silent") or []}
    figure, axes = plt.subplots(figsize=(7.5, 0.5 + 0.18 * len(nodes)))
    axes.barh(range(len(nodes)), [n["events"] for n in nodes],
              color=["#d7301f" if n["node"] in silent else "#31a354" for n in nodes])
    axes.set_yticks(range(len(nodes)), [n["node"] for n in nodes], fontsize=6)
    axes.invert_yaxis()
    axes.set_xlabel("events in the period (red: a silent source)")
    return _svg(figure)


def charts_of(report: Mapping[str, Any]) -> dict[str, str]:
    """Every chart the report's sections have data for, by name."""
    sections = report["sections"]
    made: dict[str, str | None] = {}
    if sections.get("monitoring", {}).get("status") == "ok":
        made.update(over_time=over_time(sections["monitoring"]), heatmap=heatmap(sections["monitoring"]),
                    tactics=tactics(sections["monitoring"]))
    if sections.get("response", {}).get("status") == "ok":
        made["response"] = response(sections["response"])
    if sections.get("coverage", {}).get("status") == "ok":
        made["coverage"] = coverage(sections["coverage"])
    if sections.get("attack", {}).get("status") == "ok":
        made["attack"] = attack(sections["attack"])
    return {name: svg for name, svg in made.items() if svg}
