"""The backtest's counting on fixed detections (pure), its outputs, and its rule helpers.

Golden file: ``tests/golden/backtest_result.json`` (``UPDATE_GOLDEN=1`` rewrites it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from alerts.backtest.aggregate import Aggregator, local_day
from alerts.backtest.model import BacktestResult, RuleSpec
from alerts.backtest.render import print_report, render_html, to_json
from alerts.backtest.run import baseline_copy, condition_fields
from alerts.hunt.display import console
from detectors.model import Detection, RuleInfo
from ingest.schema import get_field

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "backtest_result.json"
HOSTILE = "evil\x1b[31m[bold]<script>alert(1)</script>\u202eexe.txt"
NEW = RuleSpec(id="r-new", title="Encoded PowerShell", level="high", path="rules/new.yml",
               fields=("CommandLine", "Image"), source=("windows", "process_creation", None))
OLD = RuleSpec(id="r-old", title="Encoded PowerShell (baseline)", level="high", path="old.yml",
               fields=("CommandLine", "Image"), source=("windows", "process_creation", None), role="baseline",
               pair="r-new")
CORR = RuleSpec(id="r-corr", title="Spraying", kind="correlation", path="rules/corr.yml", fields=("source.ip",))


def _event(number: int, moment: str, *, node: str = "ag-012", agency: str = "ag-012", host: str = "pc01",
           command: str = "powershell -enc AAAA") -> dict[str, Any]:
    return {"@timestamp": moment, "event": {"id": f"e{number:02d}"}, "host": {"name": host},
            "process": {"command_line": command, "executable": "C:\\Windows\\powershell.exe"},
            "socflow": {"node": {"id": node, "agency": agency}}}


def _hit(rule: RuleSpec, event: dict[str, Any]) -> Detection:
    return Detection.for_events(RuleInfo(id=rule.id, title=rule.title), [event])


def _values(spec: RuleSpec, detection: Detection) -> Mapping[str, Sequence[Any]]:
    if spec.kind == "correlation":
        return {name: [detection.group[name]] for name in spec.fields if name in detection.group}
    paths = {"CommandLine": "process.command_line", "Image": "process.executable"}
    event = detection.events[-1]
    return {name: [get_field(event, paths[name])] for name in spec.fields}


def _result() -> BacktestResult:
    aggregator = Aggregator([NEW, OLD, CORR], _values, samples=2, top=3)
    events = [
        _event(1, "2026-11-20T02:00:00.000Z"),
        _event(2, "2026-11-20T16:59:59.000Z", host="pc02"),  # 23:59:59 in Hanoi: still the 20th
        _event(3, "2026-11-20T17:00:00.000Z", host="pc02"),  # 00:00 on the 21st in Hanoi
        _event(4, "2026-11-21T03:00:00.000Z", node="dc-portal", agency="ag-cds", host=HOSTILE, command=HOSTILE),
        _event(5, "2026-11-21T04:00:00.000Z", command=["powershell", "-enc", "BBBB"]),  # type: ignore[arg-type]
    ]
    # new fires on 1-5; old on 2-5 and on one new misses (6); 7 is suppressed for new
    for number, event in enumerate(events, start=1):
        aggregator.add(_hit(NEW, event))
        if number > 1:
            aggregator.add(_hit(OLD, event))
    aggregator.add(_hit(NEW, _event(7, "2026-11-21T06:00:00.000Z")), suppressed=True)
    aggregator.add(_hit(OLD, _event(6, "2026-11-21T05:00:00.000Z", command="powershell -e CCCC")))
    aggregator.add(_hit(NEW, events[0]))  # the same event twice in the input: one hit
    spray = [_event(10 + n, f"2026-11-20T08:0{n}:00.000Z") for n in range(3)]
    aggregator.add(Detection.for_events(RuleInfo(id="r-corr", title="Spraying"), spray, kind="correlation",
                                        group={"source.ip": "198.51.100.23"}))
    aggregator.add(_hit(RuleSpec(id="other", title="not a candidate"), events[0]))  # ignored
    return aggregator.result(source="files: test", start="2026-11-20T00:00:00.000Z", end=None, events_read=9,
                             alerts={"r-new": 2, "r-old": 2, "r-corr": 1})


def test_aggregation_matches_golden() -> None:
    result = _result()
    text = to_json(result, ids=True)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_aggregation_facts() -> None:
    result = _result()
    new, old, corr = result.rules
    assert (new.hits, new.suppressed, old.hits, corr.hits) == (5, 1, 5, 1)
    assert new.days == (("2026-11-20", 2), ("2026-11-21", 3))  # days of Asia/Ho_Chi_Minh, not UTC
    assert new.fields["CommandLine"].distinct == 5  # a list value counts each of its items
    assert result.timezone == "Asia/Ho_Chi_Minh"
    assert new.hosts.top == (("pc01", 2), ("pc02", 2), (HOSTILE, 1)) and new.nodes.distinct == 2
    diff = result.baselines[0]
    assert (diff.added, diff.removed, diff.unchanged) == (1, 1, 4)
    assert diff.added_keys == {"e01"} and diff.removed_keys == {"e06"}
    assert [s["event_id"] for s in diff.added_samples] == ["e01"]
    assert [s["event_id"] for s in diff.removed_samples] == ["e06"]
    assert corr.keys == {"e10,e11,e12"} and corr.as_dict(ids=True)["event_ids"] == ["e10", "e11", "e12"]
    assert corr.fields["source.ip"].top == (("198.51.100.23", 1),)


def test_local_day() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    assert local_day("2026-11-20T16:59:59.999Z", zone) == "2026-11-20"
    assert local_day("2026-11-20T17:00:00Z", zone) == "2026-11-21"
    assert local_day("yesterday", zone) == local_day("2026-11-20T17:00:00", zone) == "unknown"


def test_terminal_report_shows_hostile_strings_inert() -> None:
    out = console()
    with out.capture() as captured:
        print_report(_result(), out)
    text = captured.get()
    assert "\x1b" not in text and "\u202e" not in text
    assert "evil\\x1b[31m[bold]<script>" in text  # shown escaped, the markup printed, not applied
    assert "added" in text and "removed" in text


def test_html_is_self_contained_and_escaped() -> None:
    page = render_html(_result())
    assert "<script" not in page and "\x1b" not in page and "\u202e" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # no external resource
    assert page.count('src="data:image/svg+xml;base64,') == 1  # the chart
    assert "Asia/Ho_Chi_Minh" in page


def test_condition_fields_and_baseline_copy(tmp_path: Path) -> None:
    from alerts.commands.replay import load_rules

    rule = Path(__file__).resolve().parents[2] / "rules" / "web" / "web_portal_sql_injection.yml"
    engine, report = load_rules([rule])
    assert report.ok
    assert condition_fields(engine.loaded_rules()[0].conditions[0]) == ["cs-uri-query"]
    copy, old_id, new_id = baseline_copy(rule, tmp_path)
    document = yaml.safe_load(copy.read_text(encoding="utf-8"))
    assert old_id == "ba086327-6135-4c19-8d22-8b67a99e1610" != new_id == document["id"]
    assert document["name"] == "socflow_web_sql_injection_baseline"
    assert json.dumps(document["detection"]) == json.dumps(yaml.safe_load(rule.read_text())["detection"])
