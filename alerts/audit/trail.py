"""``AuditTrail``: append hash-chained records to ``socflow-audit``, and verify the chain.

Every login, user change, triage action, incident change, suppression and retention action is
one record: who (``actor``), when (``@timestamp``), what (``action`` on ``target``), the
``before`` and ``after`` values, the client address, plus ``seq``, ``prev_hash`` and ``hash``
(``alerts.audit.chain``).

One order for every writer: an append holds a thread lock and an exclusive ``flock`` on
``<head_file>.lock`` (the console and a ``socflow retention`` run may write at once), reads the
head, and creates the next record with ``op_type=create`` and ``_id`` = its ``seq``, so even a
writer that bypassed the lock could not overwrite a record: Elasticsearch answers 409 and the
writer re-reads the head from the index. The head (seq, hash) is then written atomically to
``head_file``, outside Elasticsearch, where deleting the newest records from the index cannot
reach it.

Records are created without a refresh (a human action should not wait for one); readers
(``verify``, the auditor's page) refresh the index first.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from alerts.audit.chain import EMPTY, Head, Problem, Verdict, check, link, normalize
from alerts.errors import AlertsError
from alerts.metrics import AUDIT_RECORDS
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)

MAPPING: dict[str, Any] = {
    # Only the fields auditors filter on are indexed; before/after hold any JSON shape (an alert,
    # a user without its hash, a suppression) and are stored, not mapped, so no record can be
    # refused for a shape an earlier record fixed.
    "properties": {
        "seq": {"type": "long"},
        "@timestamp": {"type": "date"},
        "actor": {"type": "keyword"},
        "action": {"type": "keyword"},
        "target": {"type": "keyword", "ignore_above": 1024},
        "source_ip": {"type": "keyword"},
        "prev_hash": {"type": "keyword"},
        "hash": {"type": "keyword"},
        "before": {"type": "object", "enabled": False},
        "after": {"type": "object", "enabled": False},
    },
}
PAGE = 1000


class AuditError(AlertsError):
    """The audit trail could not be written or read."""


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise AuditError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditTrail:
    """The hash-chained audit trail in ``index``, with its head mirrored to ``head_file``."""

    def __init__(self, client: Elasticsearch, index: str, head_file: Path) -> None:
        self.client = client
        self.index = index
        self.head_file = head_file
        self.lock_file = head_file.with_name(head_file.name + ".lock")
        self._lock = threading.Lock()
        self._index_ready = False

    # -- writing ---------------------------------------------------------------------------

    def append(self, *, actor: str, action: str, target: str, before: object = None, after: object = None,
               now: datetime, source_ip: str | None = None, defer: bool = False) -> dict[str, Any]:
        """Chain one record and return it (with ``seq`` and ``hash``); AuditError when it cannot.

        With ``defer`` (logins: they must work while Elasticsearch is down) a record that cannot be
        written now is kept in ``pending.jsonl`` beside the head file (fsynced) and chained, in
        order, before the next record that can be written; the answer then has ``pending: True``.
        """
        body = {"@timestamp": _iso(now), "actor": actor, "action": action, "target": target,
                "before": before, "after": after, "source_ip": source_ip}
        with self._lock, self._file_lock():
            try:
                self._ensure_index()
                self._flush_pending()
                record = self._chain(body)
            except (ApiError, TransportError, AuditError) as error:
                log_event(LOGGER, "audit_append_failed", logging.ERROR, action=action, actor=actor,
                          deferred=defer, error=str(error))
                if defer:
                    self._park(body)
                    AUDIT_RECORDS.labels("deferred").inc()
                    return {**normalize(body), "pending": True}
                AUDIT_RECORDS.labels("failed").inc()
                if isinstance(error, AuditError):
                    raise
                raise AuditError(f"audit record not written: {error}", source=self.index) from error
        AUDIT_RECORDS.labels("written").inc()
        log_event(LOGGER, "audit_appended", seq=record["seq"], action=action, actor=actor)
        return record

    def _chain(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the record after the current head (lock held), then move the head file."""
        head = self._read_head_file() or self._head_from_index()
        for _attempt in range(5):
            record = link(head, body)
            try:
                self.client.create(index=self.index, id=str(record["seq"]), document=record)
                break
            except ConflictError:
                # A record with this seq exists: the head file is behind the index (a writer
                # died between the two writes, or the file was lost). The index decides.
                head = self._head_from_index()
        else:
            raise AuditError("could not find the chain head after 5 conflicts", source=self.index)
        self._write_head_file(Head(record["seq"], record["hash"]))
        return record

    @property
    def pending_file(self) -> Path:
        return self.head_file.with_name("pending.jsonl")

    def pending(self) -> int:
        """Records waiting in ``pending.jsonl`` for Elasticsearch."""
        try:
            return sum(1 for line in self.pending_file.read_text(encoding="utf-8").splitlines() if line.strip())
        except FileNotFoundError:
            return 0

    def _park(self, body: dict[str, Any]) -> None:
        self.pending_file.parent.mkdir(parents=True, exist_ok=True)
        with self.pending_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(body, ensure_ascii=False, default=str, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _flush_pending(self) -> None:
        """Chain the parked records in order; those not written stay parked (lock held)."""
        try:
            lines = [line for line in self.pending_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except FileNotFoundError:
            return
        for done, line in enumerate(lines):
            try:
                self._chain(json.loads(line))
            except BaseException:
                _replace_text(self.pending_file, "".join(f"{rest}\n" for rest in lines[done:]))
                raise
        self.pending_file.unlink()
        log_event(LOGGER, "audit_pending_flushed", records=len(lines))

    def _ensure_index(self) -> None:
        if self._index_ready:
            return
        try:
            self.client.indices.create(index=self.index, mappings=MAPPING)
        except ApiError as error:
            if error.status_code != 400 or "resource_already_exists" not in str(error):
                raise
            # An index created earlier (e.g. by older retention runs, with dynamic mappings):
            # add the chain's fields; Elasticsearch refuses a change to fields already mapped.
            self.client.indices.put_mapping(index=self.index, properties=MAPPING["properties"])
        self._index_ready = True

    def _file_lock(self) -> _FileLock:
        return _FileLock(self.lock_file)

    def _read_head_file(self) -> Head | None:
        try:
            return Head.from_json(self.head_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, OSError) as error:
            log_event(LOGGER, "audit_head_unreadable", logging.WARNING, path=str(self.head_file), error=str(error))
            return None

    def _write_head_file(self, head: Head) -> None:
        _replace_text(self.head_file, head.to_json() + "\n")

    def _head_from_index(self) -> Head:
        """The record with the highest seq in the index (EMPTY when there is none)."""
        try:
            self.client.indices.refresh(index=self.index)
            hits = self.client.search(index=self.index, size=1, sort=[{"seq": "desc"}],
                                      query={"exists": {"field": "seq"}})["hits"]["hits"]
        except NotFoundError:
            return EMPTY
        if not hits:
            return EMPTY
        source = hits[0]["_source"]
        return Head(int(source["seq"]), str(source["hash"]))

    # -- reading ---------------------------------------------------------------------------

    def records(self, *, query: dict[str, Any] | None = None, page: int = PAGE,
                descending: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every chained record matching ``query`` in seq order, paged with ``search_after``."""
        self.client.indices.refresh(index=self.index)
        filters: list[dict[str, Any]] = [{"exists": {"field": "seq"}}]
        if query is not None:
            filters.append(query)
        after: list[Any] | None = None
        while True:
            options: dict[str, Any] = {"search_after": after} if after is not None else {}
            hits = self.client.search(index=self.index, size=page, query={"bool": {"filter": filters}},
                                      sort=[{"seq": "desc" if descending else "asc"}], **options)["hits"]["hits"]
            for hit in hits:
                yield hit["_id"], hit["_source"]
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def count(self) -> int:
        """Chained records in the index (for a progress bar)."""
        try:
            return int(self.client.count(index=self.index, query={"exists": {"field": "seq"}})["count"])
        except NotFoundError:
            return 0

    def verify(self, on_record: Callable[[int], None] | None = None) -> Verdict:
        """Re-walk the whole chain and compare its end with the head file (``on_record(seq)`` per record)."""
        head_present = self.head_file.exists()
        head = self._read_head_file()
        if head_present and head is None:
            verdict = Verdict()
            verdict.problem = Problem(None, None, f"the head file {self.head_file} is unreadable")
            return verdict
        records = self.records()
        if on_record is not None:
            records = _observed(records, on_record)
        try:
            return check(records, head)
        except NotFoundError:
            return check([], head)
        except (ApiError, TransportError) as error:
            raise AuditError(f"could not read the audit trail: {error}", source=self.index) from error


def _observed(records: Iterator[tuple[str, dict[str, Any]]], on_record: Callable[[int], None]
              ) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc_id, record in records:
        seq = record.get("seq")
        on_record(seq if isinstance(seq, int) else -1)
        yield doc_id, record


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _FileLock:
    """An exclusive ``flock`` on a file, held for one append across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
