"""A spool event as the document the event store keeps: checks and repairs, no I/O (pure).

The document is the normalized event exactly as the collector wrote it, under ``_id`` =
``event.id``, in the daily index of its ``@timestamp``. Three things can change it, each marked
in the document under ``socflow.store`` so that nobody mistakes a repaired event for the
original:

- an event larger than ``max_event_bytes`` once encoded has every string longer than
  ``truncate_strings_to`` characters cut to that length; ``socflow.store.truncated`` names the
  fields (dotted paths), ``socflow.store.original_bytes`` gives the size it had;
- a field Elasticsearch refused (an object where the mapping has a value) is moved under
  ``socflow.store.moved`` (not indexed) by its dotted path and named in
  ``socflow.store.moved_fields``; the writer then sends the document again;
- nothing else: an event that is not a JSON object, or has no string ``event.id``, or no
  ``@timestamp`` of the canonical form, is not an event the collectors wrote and goes to the
  dead letters with the reason.

Every other event is stored as the very bytes the collector wrote: ``split_batch`` cuts a spool
line into its events' JSON without building them as Python objects (msgspec skips over a value
at a few hundred MB/s; decoding the batch with orjson and encoding each event again cost the
writer ~25 µs of its ~30 per event), and ``envelope`` reads only ``event.id`` and
``@timestamp``. Only what fails there (or is oversized, or refused) is decoded and, if it must
change, encoded again.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from alerts.eventstore.template import daily_index
from ingest.normalize import is_canonical_timestamp

_REFUSED_FIELD = re.compile(r"failed to parse field \[([^\]]{1,512})\]")
_PARSING_ERRORS = ("document_parsing_exception", "mapper_parsing_exception")
MAX_MOVES = 8  # moves of refused fields per event before it goes to the dead letters instead


class NotAnEventError(ValueError):
    """The record is not an event the collectors write; the message is the dead-letter reason."""


def check(event: Any) -> tuple[str, str]:
    """``(event.id, @timestamp)`` of a spool event; raises NotAnEventError with the reason."""
    if not isinstance(event, dict):
        raise NotAnEventError(f"not a JSON object but {type(event).__name__}")
    meta = event.get("event")
    event_id = meta.get("id") if isinstance(meta, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 512:
        raise NotAnEventError("no event.id (a non-empty string of at most 512 characters)")
    timestamp = event.get("@timestamp")
    if not is_canonical_timestamp(timestamp):
        raise NotAnEventError(f"@timestamp is not of the form 2026-11-20T07:30:00.000Z: {str(timestamp)[:64]!r}")
    return event_id, str(timestamp)


class _Meta(msgspec.Struct):
    id: Any = None  # every other field of ``event`` is skipped, not built


class _Envelope(msgspec.Struct):
    timestamp: Any = msgspec.field(name="@timestamp", default=None)
    event: _Meta | None = None


_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
_ENVELOPES = msgspec.json.Decoder(list[_Envelope])
_ENVELOPE = msgspec.json.Decoder(_Envelope)


def split_batch(line: bytes) -> list[tuple[msgspec.Raw, str | None, str]] | None:
    """Each element of a spool line (a JSON array) as ``(json, event.id, @timestamp)``: its JSON
    text as it is in the line, and its id and time when ``check`` would accept them, else
    ``(json, None, "")`` (the caller decodes that element, and ``check`` gives the reason).

    None when the line is not a JSON array msgspec reads (not JSON, NaN, a lone surrogate,
    nested past msgspec's depth limit, a lone object): the caller decodes such a line whole and
    says what is wrong with it. Every element's envelope is read in one pass over the line;
    only a line with an element that is no such object is read element by element."""
    try:
        elements = _ELEMENTS.decode(line)
    except (msgspec.MsgspecError, RecursionError):
        return None
    try:
        envelopes: list[_Envelope | None] = list(_ENVELOPES.decode(line))
    except (msgspec.MsgspecError, RecursionError):
        envelopes = [_envelope(element) for element in elements]
    split: list[tuple[msgspec.Raw, str | None, str]] = []
    for element, found in zip(elements, envelopes, strict=True):
        event_id = found.event.id if found is not None and found.event is not None else None
        timestamp = found.timestamp if found is not None else None
        if isinstance(event_id, str) and 0 < len(event_id) <= 512 and is_canonical_timestamp(timestamp):
            split.append((element, event_id, str(timestamp)))
        else:
            split.append((element, None, ""))
    return split


def _envelope(element: msgspec.Raw) -> _Envelope | None:
    try:
        return _ENVELOPE.decode(element)
    except (msgspec.MsgspecError, RecursionError):
        return None


def index_of(prefix: str, timestamp: str) -> str:
    return daily_index(prefix, timestamp)


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON (orjson; the json module for what orjson refuses, e.g. integers past 64 bits)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        import json

        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _store_section(document: dict[str, Any]) -> dict[str, Any]:
    socflow = document.get("socflow")
    if not isinstance(socflow, dict):
        socflow = {} if socflow is None else {"value": socflow}
        document["socflow"] = socflow
    store = socflow.get("store")
    if not isinstance(store, dict):
        store = {}
        socflow["store"] = store
    return store


def truncate(document: dict[str, Any], size: int, limit: int) -> dict[str, Any]:
    """A copy of an oversized document with strings longer than ``limit`` cut; marks what it cut."""
    cut: list[str] = []

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            if len(value) > limit:
                cut.append(path)
                return value[:limit]
            return value
        if isinstance(value, dict):
            return {key: walk(child, f"{path}.{key}" if path else str(key)) for key, child in value.items()}
        if isinstance(value, list):
            return [walk(child, path) for child in value]
        return value

    copy: dict[str, Any] = walk(document, "")
    store = _store_section(copy)
    store["truncated"] = sorted(set(cut))[:64]
    store["original_bytes"] = size
    return copy


def refused_field(error: Any) -> str | None:
    """The field a ``document_parsing_exception`` names, if it names one."""
    if not isinstance(error, dict) or error.get("type") not in _PARSING_ERRORS:
        return None
    match = _REFUSED_FIELD.search(str(error.get("reason", "")))
    return match.group(1) if match else None


def move_field(document: dict[str, Any], path: str) -> bool:
    """Move the value at dotted ``path`` under ``socflow.store.moved``; False when it is not there,
    or is already inside ``socflow.store`` (moving it again would only nest it deeper)."""
    if path == "socflow.store" or path.startswith("socflow.store."):
        return False
    parts = path.split(".")
    node: Any = document
    for index, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            return False
        if part not in node:  # a literal dotted key holding the rest of the path
            rest = ".".join(parts[index:])
            if rest in node:
                parts = [*parts[:index], rest]
                break
            return False
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        return False
    value = node.pop(parts[-1])
    store = _store_section(document)
    moved = store.get("moved")
    if not isinstance(moved, dict):
        moved = {}
        store["moved"] = moved
    moved[path] = value
    fields = store.get("moved_fields")
    store["moved_fields"] = [*(fields if isinstance(fields, list) else []), path]
    return True
