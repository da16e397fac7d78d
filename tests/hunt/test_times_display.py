"""Pure parts of hunting: times as operators type them, escaping of hostile strings, the
pre-selection query's routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from alerts.hunt import HuntError
from alerts.hunt.display import safe, table
from alerts.hunt.select import candidate_query
from alerts.hunt.times import parse_duration, parse_time
from alerts.settings import REPO_ROOT
from ingest.logsource import LogsourceTable

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("-7d", NOW - timedelta(days=7)),
    ("-12h", NOW - timedelta(hours=12)),
    ("now-30m", NOW - timedelta(minutes=30)),
    ("+1h", NOW + timedelta(hours=1)),
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ("2026-12-01T08:30:00Z", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ("2026-12-01T15:30:00+07:00", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ("2026-12-01 08:30", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),  # no zone: UTC
])
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "-7x", "2026-13-01", ""])
def test_bad_times_say_what_is_accepted(text: str) -> None:
    with pytest.raises(HuntError, match="not a time"):
        parse_time(text, NOW)


def test_durations() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(days=14)
    with pytest.raises(HuntError, match="not a duration"):
        parse_duration("an hour")


def test_hostile_strings_are_inert() -> None:
    hostile = "\x1b[2J\x1b]0;owned\x07evil\u202etxt.exe\r\n[bold red]x[/bold red]\u200b"
    shown = safe(hostile)
    assert "\x1b" not in shown and "\u202e" not in shown and "\r" not in shown and "\u200b" not in shown
    assert "\\x1b[2J" in shown and "\\u202e" in shown and "\\u200b" in shown
    assert safe("x" * 300).endswith("…") and len(safe("x" * 300)) == 201
    assert safe("Sở Tư pháp") == "Sở Tư pháp"  # ordinary non-ASCII text is kept
    out = Console(record=True, width=200, color_system=None)
    out.print(table("t", ("value",), [[hostile]]))
    text = out.export_text()
    assert "[bold red]x[/bold red]" in text  # markup printed, not interpreted
    assert "\x1b" not in text and "\u202e" not in text


def test_windows_routes_by_channel_and_event_id() -> None:
    table_ = LogsourceTable.load(REPO_ROOT / "config" / "logsources.yaml")
    query = candidate_query({("windows", "process_creation", None)}, table_, None, None)
    text = str(query)
    assert "'winlog.channel': {'value': 'microsoft-windows-sysmon/operational', 'case_insensitive': True}" in text
    assert "'socflow.logsource.category': 'process_creation'" in text
    everything = candidate_query({("windows", None, None), (None, None, None)}, table_, None, None)
    assert everything == {"bool": {"filter": [
        {"range": {"@timestamp": {"format": "strict_date_optional_time_nanos"}}}]}}


def test_progress_bar_counts_events_and_matches() -> None:
    from alerts.commands.hunt import _progress

    with _progress(True) as (on_total, on_batch):
        assert on_total is not None and on_batch is not None
        on_total(10)
        on_batch(6, 1)
        on_batch(4, 0)
    with _progress(False) as callbacks:
        assert callbacks == (None, None)
