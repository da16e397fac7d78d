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

Other consumers of the spool (the event writer, ``socflow index events``) register a file
``<spool>/consumers/<name>.json`` holding, under ``done``, the segments they have finished. A
listed segment is deleted only when every registered consumer names it too; the list keeps the
names still awaited (rewritten with its commit time unchanged) and goes once none is left. A
spool without consumers is pruned on the job's list alone, as before; an unreadable consumer
file stops pruning until it is readable (deleting a segment a consumer still needs would lose
events for good; waiting costs disk only).

Flink's continuous file source remembers the path of every segment it has read; the job wraps it
(``ForgetfulFileSource`` in socflow's jar) so that its checkpoints leave out the deleted ones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.logs import log_event
from ingest.spool import is_segment_name

LOGGER = logging.getLogger(__name__)
CONSUMED_DIR = "consumed"
CONSUMERS_DIR = "consumers"


def consumer_done_lists(spool_dir: Path) -> list[set[str]] | None:
    """The ``done`` segments of each consumer registered on a spool; None when a file is unreadable."""
    directory = spool_dir / CONSUMERS_DIR
    if not directory.is_dir():
        return []
    lists: list[set[str]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            done = json.loads(path.read_text(encoding="utf-8")).get("done", [])
        except (OSError, ValueError, AttributeError):
            return None
        lists.append({str(name) for name in done})
    return lists


@dataclass(frozen=True)
class PruneResult:
    """What one pass deleted, the names it refused (not segment names of this spool), and the
    segments the job is done with that another consumer still needs."""

    segments: int = 0
    lists: int = 0
    refused: tuple[str, ...] = ()
    waiting: int = 0
    consumers_unreadable: bool = False


def prune_consumed(spool_dir: Path, *, now: float, grace_s: float) -> PruneResult:
    """Delete the segments named by consumed lists committed at least ``grace_s`` before ``now``
    and finished by every registered consumer."""
    consumed = spool_dir / CONSUMED_DIR
    if not consumed.is_dir():
        return PruneResult()
    others = consumer_done_lists(spool_dir)
    if others is None:
        return PruneResult(consumers_unreadable=True)
    segments = spool_dir / "segments"
    deleted, lists, refused, waiting = 0, 0, [], 0
    for listing in sorted(consumed.iterdir()):
        # A FileSink part is visible only once committed; its last write came before the commit.
        if listing.name.startswith(".") or not listing.is_file():
            continue
        committed_at = listing.stat().st_mtime
        if now - committed_at < grace_s:
            continue
        names = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept: list[str] = []
        for name in names:
            if not is_segment_name(name):  # never a path elsewhere: only this spool's segments
                refused.append(name)
                continue
            if any(name not in done for done in others) and (segments / name).exists():
                kept.append(name)  # another consumer has not stored it yet
                continue
            try:
                (segments / name).unlink()
            except FileNotFoundError:
                continue  # named twice (a restore re-reads a segment's end), or deleted by hand
            deleted += 1
        if kept:
            waiting += len(kept)
            if len(kept) < len(names):
                _rewrite(listing, kept, committed_at)
            continue
        listing.unlink()
        lists += 1
    return PruneResult(segments=deleted, lists=lists, refused=tuple(refused), waiting=waiting)


def _rewrite(listing: Path, names: list[str], committed_at: float) -> None:
    """Keep only ``names`` in a consumed list, with its commit time (the grace counts from it)."""
    temporary = listing.with_name(f".{listing.name}.prune")  # a leading "." : never read as a list
    temporary.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    os.utime(temporary, (committed_at, committed_at))
    os.replace(temporary, listing)


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
            if result.consumers_unreadable:
                log_event(LOGGER, "spool_prune_waiting", logging.WARNING, reason="unreadable consumer file",
                          consumers=str(self.spool_dir / CONSUMERS_DIR))
            if result.refused:
                log_event(LOGGER, "spool_prune_refused", logging.WARNING, names=list(result.refused))
            if result.segments or result.lists:
                log_event(LOGGER, "spool_pruned", segments=result.segments, lists=result.lists)
