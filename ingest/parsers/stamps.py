"""Zone-less local time stamps (BIND, Windows DNS, Zimbra) to socflow's RFC 3339 UTC form, fast.

``strptime`` costs more than the rest of a parsed line; the lines of one second share it, so the
UTC text up to the second is cached per (text, pattern, zone) and the fraction appended.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from ingest.errors import ParseError
from ingest.schema import format_timestamp

_CACHE: dict[tuple[str, str, str], str] = {}


def local_stamp(seconds: str, fraction: str, pattern: str, zone: tzinfo, *, what: str) -> str:
    """``seconds`` (read by ``pattern``, in ``zone``) plus ``fraction`` (digits of a second) in UTC.

    Raises ParseError naming ``what`` for a time that ``pattern`` does not read.
    """
    key = (seconds, pattern, str(zone))
    prefix = _CACHE.get(key)
    if prefix is None:
        try:
            moment = datetime.strptime(seconds, pattern).replace(tzinfo=zone)
        except ValueError as error:
            raise ParseError(f"bad {what} time {seconds!r}") from error
        if len(_CACHE) > 4096:
            _CACHE.clear()
        prefix = _CACHE[key] = format_timestamp(moment)[:-4]  # "2026-11-22T03:00:03."
    if not fraction.isdigit():
        fraction = "0"
    return f"{prefix}{fraction[:3].ljust(3, '0')}Z"
