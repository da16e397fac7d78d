"""Deleting the spool segments that the detection job will never read again.

The job reads each sealed segment to its end and then names it on its consumed-segments
stream, a ``FileSink`` under ``<spool>/consumed/`` that commits with each checkpoint: a visible
``consumed-*.jsonl`` file lists segments that lie wholly behind a completed checkpoint, so a
restore from that checkpoint, or a later one, does not read them again. Its in-progress and
pending files start with ``.`` and are left alone.

A listed segment is deleted once its list has been committed for ``grace_s`` seconds. The grace
leaves time for a restore from an older retained checkpoint (the job keeps three, one a second
by default); the list is deleted with its segments. Without this the spool grew by about 2 GB a
minute at 20,000 events/s, for good.

Flink's continuous file source remembers the path of every segment it has read; the job wraps it
(``ForgetfulFileSource`` in socflow's jar) so that its checkpoints leave out the deleted ones.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.logs import log_event
from ingest.spool import is_segment_name

LOGGER = logging.getLogger(__name__)
CONSUMED_DIR = "consumed"


@dataclass(frozen=True)
class PruneResult:
    """What one pass deleted, and the names it refused (not segment names of this spool)."""

    segments: int = 0
    lists: int = 0
    refused: tuple[str, ...] = ()


def prune_consumed(spool_dir: Path, *, now: float, grace_s: float) -> PruneResult:
    """Delete the segments named by consumed lists committed at least ``grace_s`` before ``now``."""
    consumed = spool_dir / CONSUMED_DIR
    if not consumed.is_dir():
        return PruneResult()
    segments = spool_dir / "segments"
    deleted, lists, refused = 0, 0, []
    for listing in sorted(consumed.iterdir()):
        # A FileSink part is visible only once committed; its last write came before the commit.
        if listing.name.startswith(".") or not listing.is_file() or now - listing.stat().st_mtime < grace_s:
            continue
        for line in listing.read_text(encoding="utf-8").splitlines():
            name = line.strip()
            if not name:
                continue
            if not is_segment_name(name):  # never a path elsewhere: only this spool's segments
                refused.append(name)
                continue
            try:
                (segments / name).unlink()
            except FileNotFoundError:
                continue  # named twice (a restore re-reads a segment's end), or deleted by hand
            deleted += 1
        listing.unlink()
        lists += 1
    return PruneResult(segments=deleted, lists=lists, refused=tuple(refused))


class SpoolPruner(threading.Thread):
    """Prunes a spool every ``every_s`` seconds while the job runs (a daemon thread of ``socflow run``)."""

    def __init__(self, spool_dir: Path, *, grace_s: float, every_s: float = 30.0) -> None:
        super().__init__(name="spool-pruner", daemon=True)
        self.spool_dir = spool_dir
        self.grace_s = grace_s
        self.every_s = every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                result = prune_consumed(self.spool_dir, now=time.time(), grace_s=self.grace_s)
            except OSError as error:  # a full or read-only disk: say so, try again next time
                log_event(LOGGER, "spool_prune_failed", logging.WARNING, spool=str(self.spool_dir), error=repr(error))
                continue
            if result.refused:
                log_event(LOGGER, "spool_prune_refused", logging.WARNING, names=list(result.refused))
            if result.segments or result.lists:
                log_event(LOGGER, "spool_pruned", segments=result.segments, lists=result.lists)
