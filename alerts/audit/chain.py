"""The pure part of the audit trail: canonical form, record hashes, and checking a chain.

A record is a JSON object; its ``hash`` is the SHA-256 of its canonical JSON form without the
``hash`` field (keys sorted, no spaces, UTF-8, no ASCII escaping), and its ``prev_hash`` is the
previous record's ``hash`` (``GENESIS`` for the first). ``seq`` counts from 1 without gaps. So a
changed record no longer matches its hash, a removed one leaves a gap in ``seq``, and records
put in another order no longer link; removing records at the end is caught by the head, which
is kept outside Elasticsearch (``<data-dir>/audit/chain-head``).

Values go through one JSON round trip before hashing (``normalize``): what is hashed is exactly
what Elasticsearch stores and returns, whatever Python type the caller passed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
HASH_FIELD = "hash"


def normalize(value: object) -> Any:
    """``value`` as JSON gives it back: tuples become lists, datetimes and paths strings."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``hash``, in canonical JSON."""
    body = {key: value for key, value in record.items() if key != HASH_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last record of a chain: its sequence number and hash (seq 0 = empty chain)."""

    seq: int
    hash: str

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Head:
        data = json.loads(text)
        seq, digest = data["seq"], data["hash"]
        if not isinstance(seq, int) or seq < 0 or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"not a chain head: {text[:200]!r}")
        return cls(seq, digest)


EMPTY = Head(0, GENESIS)


def link(previous: Head, body: dict[str, Any]) -> dict[str, Any]:
    """The record that follows ``previous``: ``body`` plus ``seq``, ``prev_hash`` and ``hash``."""
    record = normalize({**body, "seq": previous.seq + 1, "prev_hash": previous.hash})
    record[HASH_FIELD] = record_hash(record)
    return record


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain: which record (``seq``, ``doc_id``) and why."""

    seq: int | None
    doc_id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"record seq={self.seq}" if self.seq is not None else "the chain"
        if self.doc_id is not None and self.doc_id != str(self.seq):
            where += f" (_id {self.doc_id})"
        return f"{where}: {self.reason}"


@dataclass
class Verdict:
    """What walking a chain found: how many records, the last one, and the first problem."""

    records: int = 0
    last: Head = EMPTY
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check(records: Iterable[tuple[str, dict[str, Any]]], head: Head | None) -> Verdict:
    """Walk ``(doc_id, record)`` pairs in ``seq`` order; stop at the first problem.

    ``head`` is the head kept outside the store (None when that file is missing, itself a problem
    once the chain has records).
    """
    verdict = Verdict()
    for doc_id, record in records:
        expected = verdict.last.seq + 1
        seq = record.get("seq")
        problem = _problem(doc_id, record, expected, verdict.last)
        if problem is not None:
            verdict.problem = problem
            return verdict
        assert isinstance(seq, int)
        verdict.records += 1
        verdict.last = Head(seq, record[HASH_FIELD])
    if head is None:
        if verdict.records:
            verdict.problem = Problem(None, None, "the chain-head file is missing")
    elif head.seq > verdict.last.seq:
        verdict.problem = Problem(verdict.last.seq + 1, None,
                                  f"missing: the chain ends at seq {verdict.last.seq} but the head file "
                                  f"says seq {head.seq} (records removed from the end)")
    elif head != verdict.last:
        verdict.problem = Problem(verdict.last.seq, None,
                                  f"the head file (seq {head.seq}, hash {head.hash[:12]}…) disagrees with "
                                  f"the last record (seq {verdict.last.seq}, hash {verdict.last.hash[:12]}…)")
    return verdict


def _problem(doc_id: str, record: dict[str, Any], expected: int, previous: Head) -> Problem | None:  # noqa: PLR0911 - one return per kind of damage
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return Problem(None, doc_id, f"no valid seq field ({seq!r}): record changed")
    if seq < expected:
        return Problem(seq, doc_id, f"seq {seq} repeated or out of order after seq {previous.seq} (reordered)")
    if seq > expected:
        return Problem(expected, None, f"missing: the record after seq {previous.seq} is seq {seq} "
                                       f"(record{'s' if seq - expected > 1 else ''} removed)")
    if doc_id != str(seq):
        return Problem(seq, doc_id, f"stored under _id {doc_id!r}, not {str(seq)!r} (moved or reordered)")
    if record.get(HASH_FIELD) != record_hash(record):
        return Problem(seq, doc_id, "content does not match its hash (record changed)")
    if record.get("prev_hash") != previous.hash:
        return Problem(seq, doc_id, f"does not link to seq {previous.seq}: prev_hash differs "
                                    "(records reordered or replaced)")
    return None


def sequential(pages: Iterable[list[tuple[str, dict[str, Any]]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Flatten pages of records (as search_after returns them) into one stream."""
    for page in pages:
        yield from page
