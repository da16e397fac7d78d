"""Times and durations as operators type them: ISO dates and times, ``now``, ``-7d``, ``1h``.

Pure: the current time is an argument. A time without a zone is UTC (events are stored in UTC).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta

from alerts.hunt import HuntError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_RELATIVE = re.compile(r"(now)?\s*([+-])\s*(\d+(?:\.\d+)?\s*[smhdw])")


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``7d``, ``2w`` (a number alone is seconds)."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        return timedelta(seconds=float(cleaned))
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise HuntError(f"not a duration: {text!r} (examples: 30s, 15m, 1h, 7d, 2w)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_time(text: str, now: datetime) -> datetime:
    """An aware UTC datetime from ``now``, ``-7d`` / ``now-12h`` / ``+1h``, an ISO date
    (midnight UTC) or an ISO date and time (``Z`` or an offset; none means UTC)."""
    cleaned = text.strip()
    lowered = cleaned.lower()
    if lowered == "now":
        return now.astimezone(UTC)
    relative = _RELATIVE.fullmatch(lowered)
    if relative is not None:
        delta = parse_duration(relative[3])
        return (now + delta if relative[2] == "+" else now - delta).astimezone(UTC)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", cleaned):
            day = date.fromisoformat(cleaned)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError:
        raise HuntError(f"not a time: {text!r} (examples: now, -7d, -12h, 2026-12-01, "
                        "2026-12-01T08:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """Millisecond ISO form with ``Z``, the precision of Elasticsearch's ``date`` fields."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def accept_relative_times(parser: argparse.ArgumentParser) -> None:
    """Let ``--from -7d`` parse: argparse takes an argument starting with ``-`` for an option
    unless it looks like a negative number; relative times are made to look like one."""
    parser._negative_number_matcher = re.compile(r"^-\d+(?:\.\d+)?[smhdw]?$")
