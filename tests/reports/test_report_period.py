"""Periods: the Circular 12 yearly period and its due dates, months, ISO weeks, custom ranges, errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from alerts.reports import ReportError
from alerts.reports.period import last_complete, named_period, parse_period
from alerts.reports.settings import ReportSettings


def test_periods() -> None:
    settings = ReportSettings()
    yearly = named_period(settings, "yearly:2026")
    assert (yearly.start.isoformat(), yearly.end.isoformat()) == ("2025-12-15T00:00:00+07:00",
                                                                  "2026-12-15T00:00:00+07:00")
    assert yearly.due == (("owner_to_specialised_unit", "2026-12-18"), ("province_to_ministry", "2026-12-20"))
    week = named_period(settings, "weekly:2026-W48")
    assert week.start.isoformat() == "2026-11-23T00:00:00+07:00" and week.days == 7
    custom = parse_period(settings, period=None, start="2026-11-01", end="2026-11-30")
    assert custom.end == datetime.fromisoformat("2026-12-01T00:00:00+07:00")
    for bad in ("yearly:26", "monthly:2026-13", "daily:2026-01-01"):
        with pytest.raises(ReportError, match="not a period"):
            named_period(settings, bad)
    with pytest.raises(ReportError, match="not after"):
        parse_period(settings, period=None, start="2026-11-30", end="2026-11-01")


def test_last_complete_periods() -> None:
    settings = ReportSettings()
    now = datetime.fromisoformat("2026-12-16T08:00:00+07:00")
    assert last_complete(settings, "yearly", now).label == "yearly:2026"
    assert last_complete(settings, "yearly", datetime.fromisoformat("2026-12-14T23:00:00+07:00")).label == "yearly:2025"
    assert last_complete(settings, "monthly", now).label == "monthly:2026-11"
    assert last_complete(settings, "weekly", now).label == "weekly:2026-W50"
