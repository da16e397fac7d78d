"""Read Windows EVTX files and their JSON twins into tagged socflow events (tests, tools).

The same path as production: ``ingest.windows`` normalizes each record and
``ingest.logsource`` tags its Sigma logsource. Undecodable records are skipped here; the
collectors dead-letter them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.errors import ParseError
from ingest.logsource import LogsourceTable
from ingest.schema import Event
from ingest.windows import iter_evtx, iter_json_events, normalize_record


def iter_windows_file(path: Path, *, config_dir: Path | None = None,
                      table: LogsourceTable | None = None) -> Iterator[tuple[int, Event]]:
    """``(position, event)`` for each record of an ``.evtx`` file or ``.json`` export."""
    if table is None:
        from detectors.sigma.engine import DEFAULT_CONFIG_DIR

        table = LogsourceTable.load((config_dir or DEFAULT_CONFIG_DIR) / "logsources.yaml")
    records: Iterator[tuple[int, Any]]
    if path.suffix.lower() == ".evtx":
        records = ((position, record) for position, record, _ in iter_evtx(path) if record is not None)
    else:
        records = enumerate(iter_json_events(path.read_text(encoding="utf-8")), start=1)
    for position, record in records:
        try:
            event = normalize_record(record, source=f"{path}:{position}")
        except ParseError:
            continue
        yield position, table.tag(event)
