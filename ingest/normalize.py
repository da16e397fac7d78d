"""Normalization shared by every collector: the last step before an event reaches transport.

A parser turns one input record into an event with ``@timestamp`` and its own fields; the
:class:`Normalizer` then guarantees the contract of :mod:`ingest.schema` for every collector
alike: ``@timestamp`` in canonical form, a deterministic ``event.id``, ``socflow.collector``,
the Sigma logsource of Windows events, and ``socflow.node`` from the asset inventory (unknown
sources get the inventory's unknown node — tagged, never dropped).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from ingest.assets import AssetInventory
from ingest.errors import ParseError
from ingest.logsource import LogsourceTable
from ingest.schema import Event, StableIds, format_timestamp, parse_timestamp
from ingest.settings import CollectorSettings

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_CANONICAL_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_MAX_SOURCES_CACHED = 1024  # inputs whose hashed id prefix a Normalizer keeps


def resolve_config_path(path: Path) -> Path:
    """Config paths are relative to the working directory if they exist there, else to the repo."""
    if path.is_absolute() or path.exists():
        return path
    return _PACKAGE_ROOT / path


def now_timestamp() -> str:
    return format_timestamp(datetime.now(UTC))


_SECONDS: dict[int, str] = {}


def epoch_timestamp(ts: float) -> str:
    """``format_timestamp`` of an epoch time, without a datetime per call (a per-second cache)."""
    seconds = int(ts // 1)
    micros = round((ts - seconds) * 1e6)  # as datetime.fromtimestamp rounds, to agree to the digit
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = format_timestamp(datetime.fromtimestamp(seconds, UTC))[:-5]
        _SECONDS[seconds] = prefix
    return f"{prefix}.{micros // 1000:03d}Z"


def coerce_timestamp(value: Any) -> str:
    """A timestamp from JSON input (RFC 3339 text, or epoch seconds / milliseconds) in canonical form."""
    if isinstance(value, bool):
        raise ParseError(f"bad timestamp {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ParseError(f"bad timestamp {value!r}")
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)  # ms epochs are > year 5138 in s
        try:
            return format_timestamp(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError) as error:
            raise ParseError(f"bad timestamp {value!r}: {error}") from error
    if isinstance(value, str):
        try:
            return format_timestamp(parse_timestamp(value))
        except (ValueError, OverflowError) as error:
            raise ParseError(f"bad timestamp {value[:64]!r}: {error}") from error
    raise ParseError(f"bad timestamp of type {type(value).__name__}")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Flink's JVM JSON parser would reject the whole batch.
    raise ValueError(f"non-standard JSON constant {name}")


# One decoder for all lines: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# msgspec decodes several times faster than the json module and reads every value as it does:
# integers of any size (orjson, used before, read one beyond 64 bits as a float, so every line
# had to be searched for long digit runs first), correctly rounded floats, the last of duplicate
# keys. What it refuses goes to the json module, which decides and says why: NaN and Infinity,
# escaped lone surrogates, 1e400, nesting deeper than its stack, anything not JSON.
_FAST = msgspec.json.Decoder()
# A lone surrogate in the text cannot be encoded to UTF-8 for msgspec; the json module reads it.
_REFUSED_BY_FAST = (msgspec.DecodeError, RecursionError, UnicodeEncodeError)


def is_canonical_timestamp(value: Any) -> bool:
    return isinstance(value, str) and _CANONICAL_STAMP.fullmatch(value) is not None


def decode_exactly(text: str | bytes, exact: Callable[[Any], Any]) -> Any:
    """``text`` decoded by msgspec where it can, else by ``exact`` (a json module decoder, which
    also decides, and says why, on what msgspec refuses)."""
    try:
        return _FAST.decode(text)
    except _REFUSED_BY_FAST:
        return exact(text)


def loads_object(text: str) -> dict[str, Any]:
    """Decode one JSON object line; raise ParseError with the reason otherwise."""
    value = decode_exactly(text, _loads_object_exactly)
    # Not an object: the json module path gives the reason.
    return value if isinstance(value, dict) else _loads_object_exactly(text)


def _loads_object_exactly(text: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as error:
        raise ParseError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise ParseError(f"not a JSON object but {type(value).__name__}")
    if "\\ud" in text or "\\uD" in text:
        # A JSON escape may decode to a lone surrogate, which cannot be written as UTF-8.
        value = scrub_surrogates(value)
    return value


def scrub_surrogates(value: Any) -> Any:
    """Replace lone surrogates (undecodable in UTF-8) everywhere in a decoded JSON value."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value
    if isinstance(value, dict):
        return {scrub_surrogates(key): scrub_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_surrogates(item) for item in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unflatten(event: dict[str, Any]) -> dict[str, Any]:
    """Nest flat dotted keys (``{"source.ip": x}`` -> ``{"source": {"ip": x}}``).

    A dotted key whose path collides with a non-dict value stays flat: lookups through
    :func:`ingest.schema.get_field` still find it, and nothing is lost.
    """
    if "." not in "".join(event):  # every key at once: a generator over the keys cost more than the rest
        return event
    result: dict[str, Any] = {}
    dotted: list[tuple[str, Any]] = []
    for key, value in event.items():
        if "." in key and not key.startswith("@"):
            dotted.append((key, value))
        else:
            result[key] = value
    for key, value in dotted:
        parts = key.split(".")
        if any(not part for part in parts):
            result[key] = value
            continue
        node = result
        placed = True
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            elif not isinstance(child, dict):
                placed = False
                break
            node = child
        if placed and parts[-1] not in node:
            node[parts[-1]] = value
        else:
            result[key] = value
    return result


class Normalizer:
    """Finishes events for one collector instance (see the module docstring)."""

    def __init__(self, inventory: AssetInventory, logsources: LogsourceTable, collector: str) -> None:
        self.inventory = inventory
        self.logsources = logsources
        self.collector = collector
        self._ids: dict[str, StableIds] = {}

    def _ids_under(self, source_id: str) -> StableIds:
        ids = self._ids.get(source_id)
        if ids is None:
            if len(self._ids) >= _MAX_SOURCES_CACHED:
                self._ids.clear()
            ids = self._ids[source_id] = StableIds(source_id)
        return ids

    @classmethod
    def from_settings(cls, settings: CollectorSettings, collector: str) -> Normalizer:
        inventory = AssetInventory.load(resolve_config_path(settings.assets_path))
        logsources = LogsourceTable.load(resolve_config_path(settings.logsources_path))
        return cls(inventory, logsources, collector)

    def finish(self, event: Event, *, source_id: str, position: object, input_name: str) -> Event:
        """Complete ``event`` in place; ``(source_id, position)`` names its input position."""
        stamp = event.get("@timestamp")
        if stamp is None:
            event["@timestamp"] = now_timestamp()
        elif not is_canonical_timestamp(stamp):
            event["@timestamp"] = coerce_timestamp(stamp)
        meta = event.get("event")
        if not isinstance(meta, dict):
            meta = {} if meta is None else {"original_value": meta}
            event["event"] = meta
        if not meta.get("id") and not event.get("event.id"):
            meta["id"] = self._ids_under(source_id)(position)
        socflow = event.get("socflow")
        if not isinstance(socflow, dict):
            socflow = {}
            event["socflow"] = socflow
        socflow["collector"] = {"name": self.collector, "input": input_name}
        if "logsource" not in socflow and "winlog" in event:
            self.logsources.tag(event)
        self.inventory.enrich(event)
        return event
