"""Windows event records (EVTX, or their JSON export) to socflow events.

Input is the layout the ``evtx`` package emits and SigmaHQ's regression ``.json`` files use:
``{"Event": {"System": {...}, "EventData": {...} | "UserData": {...}}}`` with XML attributes
under ``#attributes`` and element text under ``#text``.

The event keeps the log's own names under ``winlog`` (``event_data`` holds the EventData or
UserData fields by their original names; Sigma's Windows field names map onto them) and adds
the ECS fields analysts search by. ``event.id`` is derived from computer, channel and record
id, so the same Windows event gets the same id whether it arrives as EVTX or as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ingest.errors import ParseError
from ingest.normalize import decode_exactly
from ingest.schema import Event, format_timestamp, parse_timestamp, stable_id


# ``isinstance(x, Mapping)`` goes through the ABC machinery (about 1 us); a record decoded from
# JSON holds only dicts, strings and numbers, so the exact type is checked first.
def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    cls = value.__class__
    return cls is dict or (cls is not str and isinstance(value, Mapping))


def _text(value: Any) -> Any:
    """The element text of an evtx JSON value (``{"#text": x, "#attributes": ...}`` -> x)."""
    cls = value.__class__
    if cls is str:
        return value
    if cls is dict or isinstance(value, Mapping):
        if "#text" in value:
            return value["#text"]
        if set(value) == {"#attributes"}:
            return None
    return value


def _attributes(value: Any) -> Mapping[str, Any]:
    """The XML attributes of an evtx JSON value; a mapping without ``#attributes`` (OpenWEC's
    and Snare's JSON write attributes as plain keys) is taken as its own attributes."""
    if _is_mapping(value):
        attributes = value.get("#attributes")
        if _is_mapping(attributes):
            return attributes
        if "#text" not in value:
            return value
    return {}


def _event_data(section: Any) -> dict[str, Any]:
    """Flatten EventData / UserData into ``{name: value}``."""
    if not _is_mapping(section):
        return {} if section is None else {"Data": section}
    data: dict[str, Any] = {}
    for key, value in section.items():
        if key == "#attributes":
            continue
        if key == "Data" and isinstance(value, list):
            # Unnamed <Data> elements: keep them as a list, as Sigma keyword rules search them.
            data["Data"] = [_text(item) for item in value]
        elif _is_mapping(value) and "#text" not in value and any(k != "#attributes" for k in value):
            # UserData: <Wrapper xmlns=...><Field>..</Field></Wrapper>; the wrapper usually
            # carries namespace attributes, which must not stop it from being flattened.
            data.update(_event_data(value))
        else:
            data[key] = _text(value)
    return data


def normalize_record(record: Mapping[str, Any], *, source: str) -> Event:
    """One Windows event (``{"Event": ...}``) as a socflow event; raises ParseError."""
    root = record.get("Event") if _is_mapping(record) else None
    if not _is_mapping(root) or not _is_mapping(root.get("System")):
        raise ParseError("not a Windows event: no Event.System", source=source)
    system = root["System"]
    created_value = system.get("TimeCreated")
    # evtx: {"#attributes": {"SystemTime": ...}}; OpenWEC and Snare JSON: plain keys or the text.
    created = created_value if isinstance(created_value, str) else _attributes(created_value).get("SystemTime")
    data = _event_data(root.get("EventData"))
    if "UserData" in root:
        data.update(_event_data(root.get("UserData")))
    execution = _attributes(system.get("Execution"))
    provider = _attributes(system.get("Provider"))
    return windows_event(WindowsSystem(
        event_id=_text(system.get("EventID")),
        record_id=_text(system.get("EventRecordID")) or 0,
        channel=str(_text(system.get("Channel")) or ""),
        computer=str(_text(system.get("Computer")) or ""),
        provider_name=str(provider.get("Name", "")),
        provider_guid=str(provider.get("Guid", "")),
        created=created,
        level=_text(system.get("Level")),
        task=_text(system.get("Task")),
        opcode=_text(system.get("Opcode")),
        keywords=_text(system.get("Keywords")),
        version=_text(system.get("Version")),
        user_id=_attributes(system.get("Security")).get("UserID"),
        execution=(execution.get("ProcessID"), execution.get("ThreadID")) if execution else None,
    ), data, source=source)


@dataclass
class WindowsSystem:
    """The System part of a Windows event, as every shape (EVTX, XML, NXLog, Snare...) gives it."""

    event_id: Any
    record_id: Any
    channel: str
    computer: str
    provider_name: str
    provider_guid: str
    created: Any  # the TimeCreated text
    level: Any = None
    task: Any = None
    opcode: Any = None
    keywords: Any = None
    version: Any = None
    user_id: Any = None
    execution: tuple[Any, Any] | None = None  # (process id, thread id) when the record names them


def windows_event(system: WindowsSystem, data: dict[str, Any], *, source: str) -> Event:
    """The socflow event of a Windows record: ``winlog.*`` by the log's own names, ECS beside.

    Every shape of Windows event ends here, so the same record gives the same event (and the
    same ``event.id``: ``windows_event_id``) whichever agent shipped it.
    """
    try:
        event_code = int(system.event_id)
        record_id = int(system.record_id or 0)
    except (TypeError, ValueError) as error:
        raise ParseError(f"bad EventID/EventRecordID: {error}", source=source) from error
    channel, computer = system.channel, system.computer
    if not system.created:
        raise ParseError("no System.TimeCreated", source=source)
    try:
        timestamp = format_timestamp(parse_timestamp(str(system.created)))
    except (ValueError, OverflowError) as error:
        raise ParseError(f"bad TimeCreated {str(system.created)[:64]!r}: {error}", source=source) from error
    winlog: dict[str, Any] = {
        "channel": channel,
        "event_id": event_code,
        "provider_name": system.provider_name,
        "provider_guid": system.provider_guid,
        "computer_name": computer,
        "record_id": record_id,
        "level": system.level,
        "task": system.task,
        "opcode": system.opcode,
        "keywords": system.keywords,
        "version": system.version,
        "event_data": data,
    }
    if system.user_id:
        winlog["user"] = {"identifier": system.user_id}
    if system.execution is not None:
        winlog["process"] = {"pid": system.execution[0], "thread": {"id": system.execution[1]}}
    event: Event = {
        "@timestamp": timestamp,
        "event": {
            "id": windows_event_id(computer, channel, record_id, timestamp),
            "code": str(event_code),
            "provider": system.provider_name,
            "module": "windows",
            "dataset": f"windows.{channel.lower()}" if channel else "windows",
            "kind": "event",
        },
        "host": {"name": computer},
        "winlog": winlog,
    }
    _add_ecs(event, data)
    return event


def windows_event_id(computer: str, channel: str, record_id: int, timestamp: str) -> str:
    """``event.id`` of a Windows record: its computer, channel and record number, and the UTC
    second of its TimeCreated (``timestamp``: canonical, as in ``@timestamp``).

    The record number alone repeats once a log is cleared (numbering starts again at 1), and a
    later record would be taken for a copy of the earlier one (the event store keeps one per
    id). The time tells them apart, at whole seconds because that is what every shape carries:
    EVTX and XML give 100 ns, Winlogbeat milliseconds, NXLog and GELF microseconds, Snare and
    NXLog's default EventTime whole seconds; each truncates (none rounds up), so the second is
    the same in all. Shapes agree on it as they agree on ``@timestamp``: a shape whose time has
    no zone is read as UTC (README, "Windows events, every common shape")."""
    return stable_id("winlog", computer.lower(), channel.lower(), record_id, timestamp[:19])


def _add_ecs(event: Event, data: Mapping[str, Any]) -> None:
    """The handful of ECS fields analysts pivot on; Sigma matches ``winlog.event_data``."""
    process: dict[str, Any] = {}
    for ecs, names in (
        ("executable", ("Image", "NewProcessName")),
        ("command_line", ("CommandLine",)),
        ("pid", ("ProcessId", "NewProcessId")),
    ):
        for name in names:
            if data.get(name) not in (None, ""):
                process[ecs] = data[name]
                break
    parent = data.get("ParentImage") or data.get("ParentProcessName")
    if parent:
        process["parent"] = {"executable": parent}
    if process:
        event["process"] = process
    user = data.get("TargetUserName") or data.get("User") or data.get("SubjectUserName")
    if isinstance(user, str) and user and user != "-":
        event["user"] = {"name": user}
    source_ip = data.get("IpAddress") or data.get("SourceIp")
    if isinstance(source_ip, str) and source_ip not in ("", "-", "::1", "127.0.0.1"):
        event["source"] = {"ip": source_ip}
    destination_ip = data.get("DestinationIp")
    if isinstance(destination_ip, str) and destination_ip:
        event["destination"] = {"ip": destination_ip, "port": data.get("DestinationPort")}


def iter_evtx(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | None, str]]:
    """``(position, record_or_None, raw_or_reason)`` for each record of an EVTX file.

    A record the parser cannot decode yields ``None`` with the reason, so it can be
    dead-lettered; the ``evtx`` package reports such records as exceptions mid-iteration.
    """
    import evtx  # imported here: heavy native module only the EVTX path needs

    try:
        parser = evtx.PyEvtxParser(str(path))
        iterator = iter(parser.records_json())
    except (RuntimeError, ValueError, OSError) as error:
        # A bad file header (or a file shorter than one): nothing in it can be read.
        yield 1, None, f"evtx file unreadable: {error}"
        return
    position = 0
    while True:
        position += 1
        try:
            item = next(iterator)
        except StopIteration:
            return
        except (RuntimeError, ValueError, OSError) as error:
            yield position, None, f"evtx record unreadable: {error}"
            continue
        if not isinstance(item, dict) or "data" not in item:
            yield position, None, "evtx record without data"
            continue
        try:
            yield position, decode_exactly(item["data"], json.loads), item["data"]
        except ValueError as error:
            yield position, None, f"evtx record is not JSON: {error}"


def iter_json_events(text: str) -> Iterator[Any]:
    """Decode one or several concatenated JSON values (SigmaHQ's ``.json`` twins do this)."""
    decoder = json.JSONDecoder()
    index, length = 0, len(text)
    while index < length:
        while index < length and text[index].isspace():
            index += 1
        if index >= length:
            return
        value, index = decoder.raw_decode(text, index)
        yield value
