"""The event writer: sealed spool segments in, one Elasticsearch document per event, idempotently.

The collectors commit events to the spool in sealed segments (``ingest.spool``), each line a
batch (a JSON array of events). The writer reads the segments in order and sends their events
in bulk requests of ``create`` operations under ``_id`` = ``event.id`` to the daily index of
each event's ``@timestamp``; it records its position (segment, line) in
``<spool>/consumers/event-store.json`` only after Elasticsearch acknowledged every event up to
it (see ``alerts.eventstore.position``; the same file tells spool pruning which segments the
writer is done with). So:

- a retry, a restart, a replay or a second run never makes a duplicate: an event already
  stored answers 409, counted as already present, never an error;
- 429 and 5xx answers and connection failures are retried with exponential back-off; after
  ``max_retries`` the run stops with an IndexingError and the position stays where it was, so
  the next run (``--follow`` waits and tries again) resumes there: nothing is lost;
- a kill at any moment loses nothing either: what was sent but not acknowledged is sent again
  and found present;
- an event Elasticsearch refuses for a field (an object where the mapping has a value) is sent
  again with that field moved aside (``alerts.eventstore.documents``); an oversized event is
  stored truncated; a record that is not an event at all, or that cannot be stored even so,
  goes to the dead-letter indices ``<deadletter_prefix>-YYYY.MM.DD`` with the reason;
- the collectors' own dead letters (``<spool>/deadletter/dl-*.jsonl``) go there too, each under
  a deterministic id (its file and line), dated by its file's modification time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import orjson
from elasticsearch import Elasticsearch

from alerts.errors import IndexingError
from alerts.eventstore import documents, metrics
from alerts.eventstore.position import WriterPosition, position_path
from alerts.eventstore.template import daily_index, install_event_templates
from alerts.retrying import RETRYABLE_STATUS, backoff, call_with_retries
from alerts.settings import EventStoreSettings
from ingest.logs import log_event
from ingest.normalize import decode_exactly
from ingest.schema import format_timestamp, stable_id
from ingest.spool import sealed_segments

LOGGER = logging.getLogger(__name__)
FILTER_PATH = "errors,items.*.status,items.*.error"


@dataclass
class EventStats:
    """What one writer run did."""

    indexed: int = 0
    already_present: int = 0
    repaired: int = 0  # stored after moving a refused field aside
    truncated: int = 0
    dead_lettered: int = 0  # records of segments that went to the dead-letter index
    deadletters_stored: int = 0  # the collectors' dead letters newly stored
    deadletters_present: int = 0
    retries: int = 0
    bulks: int = 0
    segments_done: int = 0
    backlog_segments: int = 0

    @property
    def stored(self) -> int:
        return self.indexed + self.already_present


@dataclass(slots=True)
class _Item:
    """One document to create: where, under which id, its body, and what it is.

    ``body`` is the event's JSON as the collector wrote it (``raw``: a slice of the spool line,
    never decoded) or as encoded here; ``event`` is the decoded event once the writer needed it
    (to truncate or repair it); ``letter``: a dead-letter record, not an event."""

    index: str
    id: str
    body: bytes | msgspec.Raw
    event: dict[str, Any] | None = None
    moves: int = 0
    raw: bool = False
    letter: bool = False


@dataclass
class PendingBulk:
    items: list[_Item] = field(default_factory=list)
    size: int = 0
    marks: dict[str, int] = field(default_factory=dict)  # segment -> last line in this bulk
    finished: list[str] = field(default_factory=list)  # segments read to their end

    def add(self, item: _Item) -> None:
        self.items.append(item)
        self.size += len(item.body) + len(item.index) + len(item.id) + 40


def _decode(line: bytes) -> Any:
    return decode_exactly(line, json.loads)


def utc_stamp(epoch: float) -> str:
    return format_timestamp(datetime.fromtimestamp(epoch, UTC))


class EventWriter:
    """Moves sealed spool segments into the event store; see the module docstring."""

    def __init__(
        self,
        client: Elasticsearch,
        spool_dir: Path,
        settings: EventStoreSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[EventStats], None] | None = None,
        max_moves: int = documents.MAX_MOVES,
    ) -> None:
        """``max_moves``: refused fields moved aside per event before it goes to the dead letters."""
        self.client = client
        self.max_moves = max_moves
        self.spool_dir = spool_dir
        self.settings = settings
        self.sleep = sleep
        self.on_progress = on_progress
        self.position_path = self._position_path(spool_dir)
        self.position = WriterPosition.load(self.position_path)
        self._template_ready = False
        self._indices: dict[str, str] = {}
        self._quoted: dict[str, bytes] = {}  # index name -> its JSON string

    @staticmethod
    def _position_path(spool_dir: Path) -> Path:
        return position_path(spool_dir)

    # -- the run ------------------------------------------------------------------------------
    def run_once(self, *, refresh: bool = True) -> EventStats:
        """Store everything committed so far; raise IndexingError when ES stays unavailable.

        ``refresh``: make what was stored searchable before returning (a one-off run; a
        ``--follow`` loop leaves it to the indices' refresh interval)."""
        stats = EventStats()
        self._ensure_templates(stats)
        segments = sealed_segments(self.spool_dir)
        if not self.position_path.exists() or self.position.forget_missing({p.name for p in segments}):
            self.position.save(self.position_path)  # registers the writer as a consumer of the spool
        pending = [p for p in segments if p.name not in self.position.done]
        stats.backlog_segments = len(pending)
        bulk = PendingBulk()
        for path in pending:
            start = self.position.lines.get(path.name, 0)
            with path.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if number <= start:
                        continue
                    self._add_line(bulk, path.name, number, line, stats)
                    bulk.marks[path.name] = number
                    if self._full(bulk):
                        bulk = self._flush(bulk, stats)
            bulk.finished.append(path.name)
        self._flush(bulk, stats)
        self._finish(stats, refresh=refresh)
        return stats

    def _ensure_templates(self, stats: EventStats) -> None:
        if not self._template_ready:
            self._call_with_retries(lambda: install_event_templates(self.client, self.settings), stats)
            self._template_ready = True

    def _finish(self, stats: EventStats, *, refresh: bool) -> None:
        """The collectors' dead letters, then (``refresh``) make everything searchable."""
        self._store_collector_deadletters(stats)
        if refresh and (stats.indexed or stats.deadletters_stored or stats.dead_lettered):
            self._call_with_retries(partial(self.client.indices.refresh, index=f"{self.settings.index_prefix},"
                                            f"{self.settings.deadletter_prefix}", ignore_unavailable=True,
                                            allow_no_indices=True), stats)

    def _full(self, bulk: PendingBulk) -> bool:
        return len(bulk.items) >= self.settings.bulk_size or bulk.size >= self.settings.bulk_max_bytes

    def _add_line(self, bulk: PendingBulk, segment: str, number: int, line: bytes, stats: EventStats) -> None:
        if not line or line.isspace():
            return
        elements = documents.split_batch(line)
        if elements is None:  # not an array msgspec reads: decoded whole, as the reason needs
            self._add_decoded_line(bulk, segment, number, line, stats)
            return
        limit = self.settings.max_event_bytes
        items = bulk.items
        size = 0
        for position, (raw, event_id, timestamp) in enumerate(elements):
            if event_id is not None and len(raw) <= limit:
                # The common case: stored as the very bytes the collector wrote.
                items.append(_Item(self._index(timestamp), event_id, raw, raw=True))
                size += len(raw) + len(event_id) + 80
                continue
            try:
                event = _decode(bytes(raw))
            except ValueError as error:
                self._park(bulk, segment, number, position, reason=f"unreadable spool event: {error}",
                           raw=bytes(raw).decode("utf-8", "replace"))
                continue
            self._add_event(bulk, event, stats, segment=segment, number=number, position=position)
        bulk.size += size

    def _add_decoded_line(self, bulk: PendingBulk, segment: str, number: int, line: bytes, stats: EventStats) -> None:
        try:
            batch = _decode(line)
        except (ValueError, RecursionError) as error:
            self._park(bulk, segment, number, 0, reason=f"unreadable spool batch: {error}",
                       raw=line.decode("utf-8", "replace"))
            return
        if not isinstance(batch, list):
            batch = [batch]  # one event per line: not what the spool writes, but an event all the same
        for position, event in enumerate(batch):
            self._add_event(bulk, event, stats, segment=segment, number=number, position=position)

    def _add_event(self, bulk: PendingBulk, event: Any, stats: EventStats, *, segment: str, number: int,
                   position: int) -> None:
        """A decoded event: checked, truncated when oversized, encoded."""
        try:
            event_id, timestamp = documents.check(event)
        except documents.NotAnEventError as error:
            self._park(bulk, segment, number, position, reason=f"not a storable event: {error}", raw=event)
            return
        document: dict[str, Any] = event
        body = documents.encode(document)
        if len(body) > self.settings.max_event_bytes:
            document = documents.truncate(document, len(body), self.settings.truncate_strings_to)
            body = documents.encode(document)
            stats.truncated += 1
        bulk.add(_Item(self._index(timestamp), event_id, body, document))

    def _index(self, timestamp: str) -> str:
        """The daily index of a canonical ``@timestamp`` (one per day: cached)."""
        day = timestamp[:10]
        index = self._indices.get(day)
        if index is None:
            index = self._indices[day] = daily_index(self.settings.index_prefix, timestamp)
        return index

    def _park(self, bulk: PendingBulk, segment: str, line: int, position: int, *, reason: str, raw: Any) -> None:
        """A record of a segment that is no event: into the bulk, for the dead-letter index."""
        bulk.add(self._deadletter_item(reason=reason, source=f"{segment}:{line}", stage="event-store", raw=raw,
                                       timestamp=self._record_time(segment),
                                       letter_id=stable_id("event-store", segment, line, position), file=segment,
                                       line=line))

    def _record_time(self, segment: str) -> str:
        """When a record of ``segment`` was committed: the segment's modification time (stable)."""
        return utc_stamp((self.spool_dir / "segments" / segment).stat().st_mtime)

    def _deadletter_item(self, *, reason: str, source: str, stage: str, raw: Any, timestamp: str, letter_id: str,
                         file: str, line: int) -> _Item:
        if not isinstance(raw, str):
            raw = documents.encode(raw).decode("utf-8", "replace") if raw is not None else ""
        if len(raw) > self.settings.max_event_bytes:
            raw = raw[: self.settings.max_event_bytes]
            reason = f"{reason} (raw record truncated to {self.settings.max_event_bytes} characters)"
        document = {"@timestamp": timestamp, "reason": reason, "source": source, "stage": stage, "raw": raw,
                    "event": {"id": letter_id}, "socflow": {"spool": {"file": file, "line": line}}}
        return _Item(daily_index(self.settings.deadletter_prefix, timestamp), letter_id, documents.encode(document),
                     letter=True)

    def _flush(self, bulk: PendingBulk, stats: EventStats) -> PendingBulk:
        """Send a bulk; once acknowledged, commit its marks to the position."""
        if bulk.items:
            self._send(bulk.items, stats)
        if bulk.marks or bulk.finished:
            self.position.lines.update(bulk.marks)
            for name in bulk.finished:
                self.position.done.add(name)
                self.position.lines.pop(name, None)
            stats.segments_done += len(bulk.finished)
            stats.backlog_segments -= len(bulk.finished)
            self.position.save(self.position_path)
            if self.on_progress:
                self.on_progress(stats)
        return PendingBulk()

    # -- Elasticsearch ------------------------------------------------------------------------
    def _send(self, items: list[_Item], stats: EventStats, *, kind: str = "events") -> None:
        """Create ``items``; ``kind``: "events" (a spool bulk, with parked records), "collector"
        (the collectors' dead letters) or "parked" (events refused for good, to the dead letters)."""
        waiting = items
        attempt = 0
        while waiting:
            body = self._bulk_body(waiting)
            started = time.monotonic()
            send = partial(self.client.bulk, operations=body, filter_path=FILTER_PATH)  # type: ignore[arg-type]
            response = self._call_with_retries(send, stats)
            stats.bulks += 1
            metrics.BULK_SECONDS.inc(time.monotonic() - started)
            if not response.get("errors"):  # the common case: every item created
                self._count(waiting, stats, kind, present=False)
                return
            again, later, parked = self._outcomes(waiting, response["items"], stats, kind=kind)
            if parked:
                self._send(parked, stats, kind="parked")
            if later:
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise IndexingError(f"{len(later)} documents still refused after {attempt - 1} retries")
                stats.retries += 1
                self.sleep(self._backoff(attempt))
            waiting = again + later

    def _bulk_body(self, items: list[_Item]) -> bytes:
        """The NDJSON of a ``_bulk`` request: a ``create`` action line, then the body, per item."""
        parts: list[bytes | msgspec.Raw] = []
        quoted = self._quoted
        for item in items:
            index = quoted.get(item.index)
            if index is None:
                index = quoted[item.index] = orjson.dumps(item.index)
            parts += (b'{"create":{"_index":', index, b',"_id":', orjson.dumps(item.id), b"}}\n", item.body, b"\n")
        return b"".join(parts)

    @staticmethod
    def _count(items: list[_Item], stats: EventStats, kind: str, *, present: bool) -> None:
        if kind == "collector":
            if present:
                stats.deadletters_present += len(items)
            else:
                stats.deadletters_stored += len(items)
            return
        if kind == "parked":
            return  # counted as dead_lettered when parked
        for item in items:
            if item.letter:
                stats.dead_lettered += 1  # a record of a segment that is no event
            elif present:
                stats.already_present += 1
            else:
                stats.indexed += 1
                stats.repaired += item.moves > 0

    def _outcomes(self, items: list[_Item], results: list[dict[str, Any]], stats: EventStats, *,
                  kind: str) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """Sort a bulk's items: sent again now (repaired), later (retryable), to the dead letters."""
        again: list[_Item] = []
        later: list[_Item] = []
        parked: list[_Item] = []
        for item, entry in zip(items, results, strict=True):
            result = next(iter(entry.values()))
            status = int(result.get("status", 500))
            if status in (201, 409):
                self._count([item], stats, kind, present=status == 409)
            elif status in RETRYABLE_STATUS:
                later.append(item)
            elif kind != "events" or item.letter:
                raise IndexingError(f"dead letter {item.id} refused by Elasticsearch: {result.get('error')}")
            elif item.raw and self._decoded(item):
                again.append(item)  # Elasticsearch read the collector's bytes otherwise: sent as encoded here
            else:
                assert item.event is not None  # decoded when added, or by _decoded
                refused = documents.refused_field(result.get("error"))
                if refused and item.moves < self.max_moves and documents.move_field(item.event, refused):
                    item.moves += 1
                    item.body = documents.encode(item.event)
                    again.append(item)
                    continue
                reason = f"refused by Elasticsearch: {orjson.dumps(result.get('error')).decode()[:2000]}"
                log_event(LOGGER, "event_dead_lettered", logging.WARNING, id=item.id, reason=reason[:300])
                timestamp = str(item.event.get("@timestamp"))
                parked.append(self._deadletter_item(
                    reason=reason, source=item.id, stage="event-store", raw=item.event, timestamp=timestamp,
                    letter_id=stable_id("event-store-refused", item.id), file="", line=0))
                stats.dead_lettered += 1
        return again, later, parked

    @staticmethod
    def _decoded(item: _Item) -> bool:
        """Decode a refused raw item (for its repair or its dead letter); True when encoding it
        here changes its bytes (e.g. a key given twice, which Elasticsearch refuses and the
        decoder resolves to the last value): it is then sent again as encoded, once."""
        raw = bytes(item.body)
        item.raw = False
        item.event = _decode(raw)  # msgspec read it when splitting, so one of the two decoders reads it
        body = documents.encode(item.event)
        if body == raw:
            return False
        item.body = body
        return True

    def _deadletter_files(self) -> list[Path]:
        """The collectors' sealed dead-letter files this writer stores."""
        return sorted((self.spool_dir / "deadletter").glob("dl-*.jsonl"))

    def _store_collector_deadletters(self, stats: EventStats) -> None:
        for path in self._deadletter_files():
            start, read = self.position.deadletters.get(path.name, (0, 0))
            size = path.stat().st_size
            if size == read:
                continue  # sealed dead-letter files never change: stored already
            stamp = utc_stamp(path.stat().st_mtime)
            items: list[_Item] = []
            number = start
            with path.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if number <= start or not line.strip():
                        continue
                    try:
                        letter = _decode(line)
                    except ValueError:
                        letter = {"reason": "unreadable dead-letter line", "raw": line.decode("utf-8", "replace")}
                    if not isinstance(letter, dict):
                        letter = {"reason": "dead-letter line is not an object", "raw": letter}
                    items.append(self._deadletter_item(
                        reason=str(letter.get("reason", ""))[:4096], source=str(letter.get("source", ""))[:4096],
                        stage=str(letter.get("stage", "ingest"))[:64], raw=letter.get("raw"), timestamp=stamp,
                        letter_id=stable_id("deadletter", path.name, number), file=path.name, line=number))
            if items:
                self._send(items, stats, kind="collector")
            self.position.deadletters[path.name] = (number, size)
            self.position.save(self.position_path)

    def _backoff(self, attempt: int) -> float:
        return backoff(self.settings, attempt)

    def _call_with_retries(self, call: Callable[[], Any], stats: EventStats) -> Any:
        def counted() -> None:
            stats.retries += 1

        return call_with_retries(call, self.settings, sleep=self.sleep, on_retry=counted)
