"""The socflow event: a nested dict shaped after the Elastic Common Schema (ECS).

Every collector produces events of this shape; every detector reads it.

- ECS fields where one exists: ``@timestamp`` (RFC 3339, UTC, ``Z``), ``event.*``
  (``event.id`` is a deterministic id of the input position, ``event.code``,
  ``event.dataset``, ``event.original``), ``host.*``, ``source.*``, ``destination.*``,
  ``process.*``, ``user.*``, ``network.*``, ``dns.*``, ``url.*``, ``log.file.path``.
- Windows events keep the event log's own names under ``winlog``: ``winlog.channel``,
  ``winlog.event_id`` (int), ``winlog.provider_name``, ``winlog.computer_name``,
  ``winlog.record_id`` (int) and ``winlog.event_data`` (a flat dict of EventData / UserData
  fields with their original names, which Sigma's Windows field names map onto).
- ``socflow.logsource``: the Sigma logsource ``{product, category, service}`` of the event.
- ``socflow.node``: the asset-inventory node the event came from (see ``ingest.assets``),
  or ``{"id": "unknown", ...}`` — unknown sources are tagged, never dropped.
- ``socflow.collector``: which collector produced it and from what input.

Field paths are dotted strings (``"source.ip"``); lookups also accept a literal dotted key
at any level, because JSON sources sometimes carry ``{"source.ip": ...}`` flat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]

_MISSING = object()
# Split field paths: they come from code, rules and mappings, so there are few of them.
_PATHS: dict[str, tuple[str, ...]] = {}


def get_field(event: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """Return the value at dotted ``path``; nested dicts and flat dotted keys both work."""
    if path in event:
        return event[path]
    parts = _PATHS.get(path)
    if parts is None:
        parts = tuple(path.split("."))
        if len(_PATHS) < 65536:  # bounded all the same, should paths ever come from data
            _PATHS[path] = parts
    node: Any = event
    last = len(parts) - 1
    for index, part in enumerate(parts):
        # ``type(...) is dict`` first: the ABC check alone costs more than the whole lookup,
        # and this runs several times per event on every hot path.
        if type(node) is not dict and not isinstance(node, Mapping):
            return default
        if part in node:
            node = node[part]
            continue
        # A flat key holding the rest of the path ("source.ip" inside a nested dict). At the
        # top (the whole path, looked up above) and at the last part it would be the part
        # itself, which is absent.
        if 0 < index < last:
            return node.get(".".join(parts[index:]), default)
        return default
    return node


def set_field(event: Event, path: str, value: Any) -> None:
    """Set ``value`` at dotted ``path``, creating nested dicts as needed."""
    node = event
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def flatten(event: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted_path, leaf_value)`` pairs; lists are leaves."""
    for key, value in event.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{path}.")
        else:
            yield path, value


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: event times must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp; a missing zone means UTC."""
    if len(text) == 24 and text[10] == "T" and text[23] == "Z":
        # What format_timestamp writes (every normalized event): fromisoformat takes it as is,
        # at a fifth of the general path's cost; the routers parse one per event.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Python 3.11 accepts at most 6 fractional digits; EVTX gives 7 (100 ns ticks).
    head, dot, tail = cleaned.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        if digits > 6:
            tail = tail[:6] + tail[digits:]
        cleaned = f"{head}.{tail}"
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stable_id(*parts: object) -> str:
    """A deterministic 32-hex-digit id of its parts (used for event and alert ids)."""
    return _digest_of(hashlib.blake2b(digest_size=16), parts).hexdigest()


def _digest_of(digest: hashlib.blake2b, parts: tuple[object, ...]) -> hashlib.blake2b:
    for part in parts:
        digest.update(str(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest


class StableIds:
    """``stable_id(*prefix, last)`` for many values of ``last``, hashing the prefix once (half the cost)."""

    def __init__(self, *prefix: object) -> None:
        self._prefix = _digest_of(hashlib.blake2b(digest_size=16), prefix)

    def __call__(self, last: object) -> str:
        digest = self._prefix.copy()
        digest.update(str(last).encode("utf-8", "surrogatepass") + b"\x1f")  # as _digest_of, in one update
        return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form hashed and written to golden files."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
