"""'Suppress alerts like this': admins' suppressions, written where the detection job reads them.

The job merges ``config/suppressions.yaml`` (reviewed in git) with the console's file
``<data-dir>/suppressions.yaml`` (``Settings.suppression_paths``, ``Suppressor.load_all``), so
a suppression made in the console applies in the running job (which looks for changed files
every 10 s, ``detectors.dedup.ReloadingSuppressor``), in its next start and in ``socflow
replay``, without touching the reviewed file. Entries have the same shape as the reviewed
file's, plus who made them, when, and from which alert.

Writes are serialised by a lock file and replace the file atomically; the new file is loaded
with the job's own loader before it replaces the old one, so the console can never leave a
file the job refuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from alerts.filelock import exclusive
from alerts.triage.errors import TriageError
from alerts.triage.model import MAX_REASON
from detectors.dedup import Suppressor
from detectors.errors import DetectorError
from ingest.schema import format_timestamp, get_field

# Fields of an alert a suppression can be made on (besides its rule, always part of it).
SUPPRESSIBLE_FIELDS = ("host.name", "source.ip", "user.name", "destination.ip", "process.executable",
                       "dns.question.name", "url.path")
MAX_EXPIRY = timedelta(days=366)


def candidate_fields(alert: Mapping[str, Any]) -> dict[str, str]:
    """The alert's values a suppression can name, by field (those the alert has)."""
    found = {}
    for name in SUPPRESSIBLE_FIELDS:
        value = get_field(alert, name)
        if isinstance(value, str | int) and str(value).strip():
            found[name] = str(value)
    return found


def build_entry(alert: Mapping[str, Any], *, alert_id: str, name: str, fields: Sequence[str], reason: str,
                until: datetime, actor: str, now: datetime) -> dict[str, Any]:
    """A suppression entry from the alert's rule and the chosen fields' values."""
    text = (reason or "").strip()
    if not text or len(text) > MAX_REASON:
        raise TriageError(f"a suppression needs a reason of 1-{MAX_REASON} characters")
    if until.tzinfo is None:
        raise TriageError("the expiry needs a time zone")
    if until <= now:
        raise TriageError("the expiry must be in the future")
    if until - now > MAX_EXPIRY:
        raise TriageError("a suppression may last at most a year; renew it then")
    values = candidate_fields(alert)
    unknown = [field for field in fields if field not in values]
    if unknown:
        raise TriageError(f"the alert has no value for {', '.join(unknown)}; choose from {', '.join(values)}")
    rule_id = get_field(alert, "rule.id")
    if not rule_id:
        raise TriageError("the alert names no rule")
    entry: dict[str, Any] = {"name": name, "reason": text, "rule": str(rule_id)}
    chosen = {field: values[field] for field in fields}
    if "host.name" in chosen:
        entry["host"] = chosen.pop("host.name")
    if chosen:
        entry["fields"] = chosen
    entry.update(until=format_timestamp(until), created_by=actor, created_at=format_timestamp(now), alert=alert_id)
    return entry


class SuppressionFile:
    """The console's suppression file (``Settings.suppression_paths[-1]``)."""

    def __init__(self, path: Path, others: Sequence[Path] = ()) -> None:
        """``others``: the job's other suppression files, whose names a new entry must not reuse."""
        self.path = path
        self.others = tuple(others)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with exclusive(self.path.parent / (self.path.name + ".lock")):
            yield

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise TriageError(f"cannot read the suppression file: {error}", source=str(self.path)) from error
        return list(data.get("suppressions") or [])

    def add(self, entry: Mapping[str, Any]) -> None:
        """Append ``entry``; the result must load with the job's loader, else nothing changes."""
        with self._locked():
            entries = self.entries()
            temporary = self.path.with_name(self.path.name + ".tmp")
            document = {"suppressions": [*entries, dict(entry)]}
            header = ("# Written by the socflow console (admins' 'suppress alerts like this'); merged by the job\n"
                      "# with config/suppressions.yaml. Edit with care: each entry has a reason and an expiry.\n")
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                Suppressor.load_all([*self.others, temporary])
            except DetectorError as error:
                temporary.unlink(missing_ok=True)
                raise TriageError(f"the suppression would not load in the job: {error.reason}",
                                  source=str(self.path)) from error
            os.replace(temporary, self.path)
