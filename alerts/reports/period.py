"""The reported period: ``--from/--to`` or ``--period yearly:2026|monthly:2026-11|weekly:2026-W48``.

Times are in the province's time zone (Asia/Ho_Chi_Minh): a date means its local midnight, the
end is exclusive internally and shown as the last day included. The yearly period is that of
the state's yearly reports: 15 December of the previous year to 14 December (the start is a
setting, ``reports.yearly_start``), with the due dates of ``reports.yearly_due``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.reports import ReportError
from alerts.reports.settings import ReportSettings


@dataclass(frozen=True)
class Period:
    """``[start, end)`` as aware datetimes, with how it was asked for."""

    start: datetime
    end: datetime
    label: str
    kind: str  # yearly | monthly | weekly | custom
    due: tuple[tuple[str, str], ...] = ()  # (what, local date ISO)

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start).total_seconds() / 86400))

    def as_dict(self, zone: ZoneInfo) -> dict[str, object]:
        last = (self.end.astimezone(zone) - timedelta(microseconds=1)).date()
        return {"label": self.label, "kind": self.kind, "start": iso(self.start), "end": iso(self.end),
                "first_day": self.start.astimezone(zone).date().isoformat(), "last_day": last.isoformat(),
                "days": self.days, "due": [{"what": what, "date": when} for what, when in self.due]}


def iso(moment: datetime) -> str:
    """UTC, second precision, Z: what sections put into Elasticsearch range queries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _month_day(text: str, year: int) -> date:
    month, day = (int(part) for part in text.split("-"))
    return date(year, month, day)


def parse_moment(text: str, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """A date (local midnight; as an end, the next midnight: the day is included) or a datetime."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return _midnight(day + timedelta(days=1) if end else day, zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ReportError(f"not a date or time: {text!r} (YYYY-MM-DD or ISO 8601)") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_period(settings: ReportSettings, *, period: str | None, start: str | None, end: str | None) -> Period:
    """The period from ``--period`` or from ``--from``/``--to`` (one of the two ways)."""
    zone = ZoneInfo(settings.timezone)
    if period:
        if start or end:
            raise ReportError("give --period or --from/--to, not both")
        return named_period(settings, period)
    if not (start and end):
        raise ReportError("a report needs --period KIND:WHEN or both --from and --to")
    first, last = parse_moment(start, zone), parse_moment(end, zone, end=True)
    if last <= first:
        raise ReportError(f"--to ({end}) is not after --from ({start})")
    return Period(first, last, f"{start} .. {end}", "custom")


def named_period(settings: ReportSettings, text: str) -> Period:
    zone = ZoneInfo(settings.timezone)
    kind, _, when = text.partition(":")
    try:
        if kind == "yearly" and re.fullmatch(r"\d{4}", when):
            year = int(when)
            first = _midnight(_month_day(settings.yearly_start, year - 1), zone)
            last = _midnight(_month_day(settings.yearly_start, year), zone)
            due = tuple((what, _month_day(day, year).isoformat()) for what, day in settings.yearly_due)
            return Period(first, last, text, "yearly", due)
        if kind == "monthly" and re.fullmatch(r"\d{4}-\d{2}", when):
            year, month = (int(part) for part in when.split("-"))
            first_day = date(year, month, 1)
            next_day = date(year + month // 12, month % 12 + 1, 1)
            return Period(_midnight(first_day, zone), _midnight(next_day, zone), text, "monthly")
        if kind == "weekly" and re.fullmatch(r"\d{4}-W\d{2}", when):
            year, week = int(when[:4]), int(when[6:])
            monday = date.fromisocalendar(year, week, 1)
            return Period(_midnight(monday, zone), _midnight(monday + timedelta(days=7), zone), text, "weekly")
    except ValueError as error:
        raise ReportError(f"not a period: {text!r} ({error})") from error
    raise ReportError(f"not a period: {text!r}; use yearly:2026, monthly:2026-11 or weekly:2026-W48")


def last_complete(settings: ReportSettings, kind: str, now: datetime) -> Period:
    """The newest period of ``kind`` that has ended by ``now`` (what the scheduler issues)."""
    local = now.astimezone(ZoneInfo(settings.timezone)).date()
    if kind == "yearly":
        year = local.year if local >= _month_day(settings.yearly_start, local.year) else local.year - 1
        return named_period(settings, f"yearly:{year}")
    if kind == "monthly":
        previous = local.replace(day=1) - timedelta(days=1)
        return named_period(settings, f"monthly:{previous:%Y-%m}")
    if kind == "weekly":
        iso_year, week, _ = (local - timedelta(days=7)).isocalendar()
        return named_period(settings, f"weekly:{iso_year}-W{week:02d}")
    raise ReportError(f"unknown period kind {kind!r}")


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
