"""The durable spool: append-only segment files that the Flink job reads.

Layout of a spool directory::

    segments/seg-<writer>-<seq>.jsonl   sealed segments; each line is a JSON array (a batch)
    segments/_seg-<writer>-<seq>.jsonl  a segment being written (Flink's FileSource skips
                                        names starting with "_" until it is sealed)
    consumed/consumed-*.jsonl           names of segments the job read, committed with its
                                        checkpoints (see ingest.spool_prune)
    deadletter/dl-<writer>-<seq>.jsonl  records that could not be decoded, with the reason
    state/<writer>.json                 the collector's committed source offsets

A segment carries batches, not single events, because each record that crosses from Flink's
JVM into Python costs tens of microseconds (see PYFLINK_NOTES.md).

Crash safety is a small two-phase commit with the ``state/<writer>.pending`` file as the
commit point: (1) write and fsync the in-progress segment and dead letters, (2) write and
fsync ``pending`` naming them and the new source offsets, (3) rename the in-progress files
to their sealed names, (4) rename ``pending`` over the committed state. On open, a
``pending`` file means the commit happened and is rolled forward; in-progress files without
one are discarded, and the collector re-reads from the committed offsets. So every source
record lands in exactly one sealed segment or dead-letter file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ingest.errors import SpoolError
from ingest.schema import Event

_SEGMENT_NAME = re.compile(r"^seg-(?P<writer>[A-Za-z0-9_.-]+?)-(?P<seq>\d{12})\.jsonl$")
_WRITER_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be processed, kept with the reason and where it came from."""

    reason: str
    source: str
    raw: str
    stage: str = "ingest"

    def as_record(self) -> dict[str, str]:
        return {"reason": self.reason, "source": self.source, "stage": self.stage, "raw": self.raw}


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_durably(path: Path, lines: list[bytes]) -> None:
    with path.open("wb") as handle:
        for line in lines:
            handle.write(line)
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())


class SpoolWriter:
    """Appends events in batches and commits them together with the source offsets.

    ``append`` buffers; nothing is visible downstream or durable until ``commit(offsets)``.
    One writer id belongs to one process at a time (a collector instance).
    """

    def __init__(self, spool_dir: Path, writer_id: str, *, batch_size: int = 1000) -> None:
        if not _WRITER_ID.match(writer_id):
            raise SpoolError(f"writer id {writer_id!r} may hold only letters, digits, '_', '.', '-'")
        if batch_size < 1:
            raise SpoolError("batch_size must be at least 1")
        self.spool_dir = spool_dir
        self.writer_id = writer_id
        self.batch_size = batch_size
        self.segments_dir = spool_dir / "segments"
        self.deadletter_dir = spool_dir / "deadletter"
        self.state_dir = spool_dir / "state"
        for directory in (self.segments_dir, self.deadletter_dir, self.state_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._state_path = self.state_dir / f"{writer_id}.json"
        self._pending_path = self.state_dir / f"{writer_id}.pending"
        self._batches: list[bytes] = []
        self._current: list[Event] = []
        self._dead: list[bytes] = []
        self.events_uncommitted = 0
        self._recover()
        state = self._read_state()
        self.offsets: dict[str, Any] = state.get("offsets", {})
        self._seq: int = max(int(state.get("seq", 0)), self._highest_sealed_seq())

    # -- recovery ---------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        if not self._state_path.exists():
            return {}
        try:
            state = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SpoolError(f"unreadable spool state: {error}", source=str(self._state_path)) from error
        if not isinstance(state, dict):
            raise SpoolError("spool state is not an object", source=str(self._state_path))
        return state

    def _recover(self) -> None:
        if self._pending_path.exists():
            try:
                pending = json.loads(self._pending_path.read_text(encoding="utf-8"))
            except ValueError:
                pending = None  # torn before its fsync finished: the commit never happened
            if isinstance(pending, dict):
                for temporary, final in pending.get("renames", []):
                    if (self.spool_dir / temporary).exists():
                        os.replace(self.spool_dir / temporary, self.spool_dir / final)
                _fsync_dir(self.segments_dir)
                _fsync_dir(self.deadletter_dir)
                os.replace(self._pending_path, self._state_path)
                _fsync_dir(self.state_dir)
            else:
                self._pending_path.unlink()
        for directory in (self.segments_dir, self.deadletter_dir):
            for leftover in directory.glob(f"_*-{self.writer_id}-*.jsonl"):
                leftover.unlink()

    def _highest_sealed_seq(self) -> int:
        highest = 0
        for path in self.segments_dir.iterdir():
            match = _SEGMENT_NAME.match(path.name)
            if match and match["writer"] == self.writer_id:
                highest = max(highest, int(match["seq"]))
        return highest

    # -- writing ----------------------------------------------------------------------------
    def append(self, event: Event) -> None:
        self._current.append(event)
        self.events_uncommitted += 1
        if len(self._current) >= self.batch_size:
            self._close_batch()

    def dead_letter(self, letter: DeadLetter) -> None:
        self._dead.append(json.dumps(letter.as_record(), ensure_ascii=False).encode("utf-8"))

    def _close_batch(self) -> None:
        if self._current:
            self._batches.append(_encode_batch(self._current))
            self._current = []

    def commit(self, offsets: Mapping[str, Any] | None = None) -> int:
        """Make everything appended so far durable and visible, with ``offsets``; return events."""
        self._close_batch()
        new_offsets = dict(self.offsets if offsets is None else offsets)
        if not self._batches and not self._dead and new_offsets == self.offsets:
            return 0
        seq = self._seq + 1
        name = f"{self.writer_id}-{seq:012d}.jsonl"
        renames: list[tuple[str, str]] = []
        if self._batches:
            _write_durably(self.segments_dir / f"_seg-{name}", self._batches)
            renames.append((f"segments/_seg-{name}", f"segments/seg-{name}"))
        if self._dead:
            _write_durably(self.deadletter_dir / f"_dl-{name}", self._dead)
            renames.append((f"deadletter/_dl-{name}", f"deadletter/dl-{name}"))
        state = {"seq": seq, "offsets": new_offsets, "renames": renames}
        _write_durably(self._pending_path, [json.dumps(state, ensure_ascii=False).encode("utf-8")])
        for temporary, final in renames:  # commit point passed: roll forward from here
            os.replace(self.spool_dir / temporary, self.spool_dir / final)
        _fsync_dir(self.segments_dir)
        _fsync_dir(self.deadletter_dir)
        os.replace(self._pending_path, self._state_path)
        _fsync_dir(self.state_dir)
        committed = self.events_uncommitted
        self._seq = seq
        self.offsets = new_offsets
        self._batches, self._dead, self.events_uncommitted = [], [], 0
        return committed


def _encode_batch(events: list[Event]) -> bytes:
    """Compact JSON of one batch in UTF-8, non-ASCII kept as it is.

    orjson encodes several times faster than the json module, which matters on every
    collector's hot path; what orjson refuses (integers beyond 64 bits, non-string keys, lone
    surrogates) goes through the json module as before. Batches stay bytes up to the file:
    decoding orjson's output only to encode it again on write cost as much as the encoding.
    """
    try:
        return orjson.dumps(events)
    except orjson.JSONEncodeError:
        return json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def is_segment_name(name: str) -> bool:
    """Whether ``name`` is the file name of a sealed segment (``seg-<writer>-<seq>.jsonl``)."""
    return _SEGMENT_NAME.match(name) is not None


def sealed_segments(spool_dir: Path) -> list[Path]:
    """Sealed segments in a stable order (writer, then sequence)."""
    directory = spool_dir / "segments"
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if is_segment_name(path.name))


def read_batches(spool_dir: Path) -> Iterator[list[Event]]:
    """Every batch of every sealed segment (for replay and tests; Flink reads the files itself)."""
    for segment in sealed_segments(spool_dir):
        with segment.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    batch = json.loads(line)
                except ValueError as error:
                    raise SpoolError(f"corrupt batch: {error}", source=f"{segment}:{number}") from error
                yield batch


def dead_letters(spool_dir: Path) -> Iterator[dict[str, Any]]:
    directory = spool_dir / "deadletter"
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("dl-*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)
