"""Windows events in the shapes agents ship them, each mapped onto the one EVTX-shaped event.

EVTX files, their JSON export and Winlogbeat ECS were read before; this module adds:

- **NXLog JSON** (``im_msvistalog`` + ``to_json()``): a flat object, ``EventID``, ``Channel``,
  ``Hostname``, ``SourceName``, ``EventTime``, ``RecordNumber``... with the EventData fields at
  top level beside NXLog's own (``EventReceivedTime``, ``SourceModuleName``, ``Severity``...);
- **NXLog GELF** (``xm_gelf``): ``version``, ``host``, ``short_message``, ``timestamp`` and the
  same fields prefixed with ``_``;
- **rendered XML** (``<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>``),
  as ``wevtutil qe /f:xml``, Windows Event Forwarding collectors and ``Get-WinEvent ... ToXml()``
  write it: one event per line here, whole files of ``<Event>`` elements in ``ingest.files``;
- **syslog** (RFC 3164 and 5424) carrying Snare's tab-delimited ``MSWinEventLog`` record, an
  NXLog ``to_kvp()`` key=value record, or any of the JSON shapes above as its payload.

Every shape ends in :func:`ingest.windows.windows_event`: the same ``winlog.*`` names, the same
``event.id`` (computer, channel, record id) and, through ``config/logsources.yaml``, the same
``socflow.logsource`` as the EVTX record, so the same Sigma rules fire on it.

Never guessed silently: a JSON object that looks like a Windows event (an event id and a
channel under any of the names in :data:`EVENT_ID_KEYS` / :data:`CHANNEL_KEYS`) but fits no
shape, or fits one and cannot be mapped, is a dead letter with the reason.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any
from xml.parsers import expat

from ingest.errors import ParseError
from ingest.normalize import coerce_timestamp, is_canonical_timestamp, loads_object, unflatten
from ingest.parsers import syslog as syslog_parser
from ingest.parsers.catalogue import SourceFormat
from ingest.schema import Event
from ingest.windows import WindowsSystem, _event_data, normalize_record, windows_event, windows_event_id

# -- JSON shapes --------------------------------------------------------------------------------

# Names an event id or a channel goes by in the JSON shapes socflow knows or has seen
# (NXLog, GELF, Winlogbeat flat and nested, Splunk, OpenWEC); both present: a Windows event.
EVENT_ID_KEYS = ("EventID", "EventId", "eventid", "event_id", "EventCode", "_EventID", "winlog.event_id")
CHANNEL_KEYS = ("Channel", "channel", "LogName", "log_name", "_Channel", "winlog.channel", "EventLog")

# NXLog's own fields (im_msvistalog, core, xm_json): everything else is an EventData field.
_NXLOG_SYSTEM = frozenset((
    "EventTime", "Hostname", "EventID", "SourceName", "ProviderGuid", "RecordNumber", "Channel",
    "Keywords", "Level", "LevelValue", "Task", "TaskValue", "Opcode", "OpcodeValue", "Version",
    "UserID", "ExecutionProcessID", "ExecutionThreadID", "ActivityID", "RelatedActivityID",
))
_NXLOG_META = frozenset((
    "EventReceivedTime", "SourceModuleName", "SourceModuleType", "Severity", "SeverityValue",
    "SyslogSeverity", "SyslogSeverityValue", "SyslogFacility", "SyslogFacilityValue", "Category",
    "Message", "ERROR_EVT_UNRESOLVED", "EventXML", "Opcode", "MessageSourceAddress", "@timestamp",
))
# What NXLog resolves UserID into: its own only beside a UserID (7045's EventData AccountName,
# the service account, is the EventData field otherwise).
_NXLOG_ACCOUNT = frozenset(("AccountName", "AccountType", "Domain"))
# NXLog's EventType ("AUDIT_SUCCESS"...) shares its name with an EventData field of Sysmon's
# registry, pipe and WMI events ("SetValue"...), which NXLog writes over its own: only these
# values are NXLog's.
_NXLOG_EVENT_TYPES = frozenset(("AUDIT_SUCCESS", "AUDIT_FAILURE", "INFO", "WARNING", "ERROR", "CRITICAL",
                                "VERBOSE", "INFORMATION"))
_LEVEL_NAMES = {"logalways": 0, "critical": 1, "error": 2, "warning": 3, "information": 4, "informational": 4,
                "verbose": 5}
_GELF_OWN = frozenset(("version", "host", "short_message", "full_message", "timestamp", "level", "facility",
                       "line", "file"))


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _level(value: Any, numeric: Any = None) -> Any:
    for candidate in (numeric, value):
        number = _int_or_none(candidate)
        if number is not None:
            return number
    if isinstance(value, str):
        return _LEVEL_NAMES.get(value.strip().lower(), value)
    return value


def _keywords(value: Any) -> Any:
    """EVTX writes keywords as ``0x`` hex; NXLog as a (signed or unsigned) decimal string."""
    if value is None or isinstance(value, bool):
        return value
    try:
        number = value if isinstance(value, int) else int(str(value).strip(), 0)
    except ValueError:
        return value
    return f"0x{number & 0xFFFFFFFFFFFFFFFF:x}"


def _text_value(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def from_nxlog(obj: Mapping[str, Any], *, source: str, message: str | None = None) -> Event:
    """An NXLog ``im_msvistalog`` record (``to_json()`` keys) as a socflow event; ParseError if bad."""
    created = obj.get("EventTime")
    if created is None:
        created = obj.get("@timestamp")
    if isinstance(created, int | float) and not isinstance(created, bool):
        created = coerce_timestamp(created)
    elif created is not None and not isinstance(created, str):
        raise ParseError(f"EventTime of type {type(created).__name__}", source=source)
    if "RecordNumber" not in obj:
        raise ParseError("NXLog Windows event without RecordNumber", source=source)
    pid, tid = obj.get("ExecutionProcessID"), obj.get("ExecutionThreadID")
    system = WindowsSystem(
        event_id=obj.get("EventID"),
        record_id=obj.get("RecordNumber"),
        channel=_text_value(obj.get("Channel") or ""),
        computer=_text_value(obj.get("Hostname") or ""),
        provider_name=_text_value(obj.get("SourceName") or ""),
        provider_guid=_text_value(obj.get("ProviderGuid") or ""),
        created=created,
        level=_level(obj.get("Level"), obj.get("LevelValue")),
        task=_level(obj.get("TaskValue")) if "TaskValue" in obj else _level(obj.get("Task")),
        opcode=_level(obj.get("OpcodeValue")) if "OpcodeValue" in obj else None,
        keywords=_keywords(obj.get("Keywords")),
        version=_level(obj.get("Version")),
        user_id=obj.get("UserID"),
        execution=(_int_or_none(pid), _int_or_none(tid)) if pid is not None or tid is not None else None,
    )
    data: dict[str, Any] = {}
    resolved = "UserID" in obj
    for key, value in obj.items():
        if key in _NXLOG_SYSTEM or key in _NXLOG_META or (resolved and key in _NXLOG_ACCOUNT):
            continue
        if key == "EventType" and isinstance(value, str) and value.upper() in _NXLOG_EVENT_TYPES:
            continue
        data[key] = value
    event = windows_event(system, data, source=source)
    text = obj.get("Message") if message is None else message
    if isinstance(text, str) and text:
        event["message"] = text
    return event


def from_gelf(obj: Mapping[str, Any], *, source: str) -> Event:
    """An NXLog ``xm_gelf`` record: GELF's own keys, the NXLog fields prefixed with ``_``."""
    fields: dict[str, Any] = {key[1:]: value for key, value in obj.items() if key.startswith("_")}
    fields.setdefault("Hostname", obj.get("host"))
    if "EventTime" not in fields:
        stamp = obj.get("timestamp")
        if stamp is None:
            raise ParseError("GELF Windows event without timestamp or _EventTime", source=source)
        fields["EventTime"] = coerce_timestamp(stamp)
    message = obj.get("full_message") or obj.get("short_message")
    return from_nxlog(fields, source=source, message=message if isinstance(message, str) else None)


def _winlogbeat(obj: dict[str, Any], *, source: str) -> Event:
    """Winlogbeat / Elastic Agent ECS: kept as it is, with ``winlog.event_id`` made a number
    (Winlogbeat 8 writes it as text), ``winlog.user_data`` among ``winlog.event_data`` (where the
    EVTX event has it) and ``event.id`` the one EVTX gives the same record."""
    event = unflatten(obj)
    winlog = event["winlog"]
    code = _int_or_none(winlog.get("event_id"))
    if code is None:
        raise ParseError(f"Winlogbeat event with event_id {str(winlog.get('event_id'))[:40]!r}", source=source)
    winlog["event_id"] = code
    user_data = winlog.get("user_data")
    if isinstance(user_data, dict):
        # Winlogbeat keeps UserData apart; EVTX's event (and Sigma's field names) has it with EventData.
        data = winlog.get("event_data")
        merged = {key: value for key, value in user_data.items() if key != "xml_name"}
        winlog["event_data"] = {**merged, **data} if isinstance(data, dict) else merged
    record = _int_or_none(winlog.get("record_id"))
    if record is not None:
        winlog["record_id"] = record
    if "@timestamp" not in event:  # as any ECS-ish event: another time key, else reception time
        for key in ("timestamp", "time", "ts"):
            if isinstance(event.get(key), str | int | float):
                event["@timestamp"] = coerce_timestamp(event[key])
                break
    # Windows numbers records from 1: a 0 names none; and without the record's time (Winlogbeat's
    # @timestamp is TimeCreated) neither is it named. Its position then gives the id.
    if record and "@timestamp" in event:
        meta = event.get("event")
        if not isinstance(meta, dict):
            meta = event["event"] = {}
        if not meta.get("id"):
            computer = str(winlog.get("computer_name") or "")
            stamp = event["@timestamp"]
            if not is_canonical_timestamp(stamp):  # canonical already (most shippers'): no parse, no strftime
                stamp = event["@timestamp"] = coerce_timestamp(stamp)  # what Normalizer.finish would write
            meta["id"] = windows_event_id(computer, str(winlog.get("channel") or ""), record, stamp)
    return event


_ID_KEYSET = frozenset(EVENT_ID_KEYS)


def looks_windows(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (event id, channel) key names that make ``obj`` look like a Windows event, if any."""
    if _ID_KEYSET.isdisjoint(obj):
        return None
    for id_key in EVENT_ID_KEYS:
        if id_key in obj:
            for channel_key in CHANNEL_KEYS:
                if channel_key in obj:
                    return id_key, channel_key
            return None
    return None


def windows_json(obj: dict[str, Any], *, source: str) -> tuple[str, Event] | None:
    """``(shape, event)`` of a JSON object in a Windows shape; None when it does not look like
    one; ParseError (a dead letter) when it looks like one and cannot be mapped."""
    root = obj.get("Event")
    if root is not None and isinstance(root, Mapping) and "System" in root:
        return "windows", normalize_record(obj, source=source)
    winlog = obj.get("winlog")
    if isinstance(winlog, dict) and "event_id" in winlog and "channel" in winlog:
        return "winlogbeat", _winlogbeat(obj, source=source)
    names = looks_windows(obj)
    if names is None:
        return None
    if names[0] == "EventID" and names[1] == "Channel":
        return "nxlog", from_nxlog(obj, source=source)
    if names[0] == "_EventID" and "short_message" in obj:
        return "gelf", from_gelf(obj, source=source)
    if names[0] == "winlog.event_id":
        return "winlogbeat", _winlogbeat(obj, source=source)
    raise ParseError(f"looks like a Windows event ({names[0]!r} and {names[1]!r}) but matches no known shape "
                     "(NXLog JSON, NXLog GELF, Winlogbeat, evtx JSON)", source=source)


def parse_nxlog_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    """``--format nxlog``/``gelf``: a JSON line, its shape decided per line as the ``json`` format
    decides it (a file sniffed from a Windows first line may hold other JSON events too)."""
    from ingest.parsers.jsonlog import parse_json_line  # jsonlog imports this module

    return parse_json_line(line, source=source, hint=hint)


def _looks_like_nxlog(line: str) -> bool:
    return line.startswith("{") and '"EventID"' in line and '"Channel"' in line


def _looks_like_gelf(line: str) -> bool:
    return line.startswith("{") and '"_EventID"' in line and '"short_message"' in line


# -- XML ----------------------------------------------------------------------------------------

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
MAX_XML_DEPTH = 64


class _Element:
    __slots__ = ("attributes", "children", "name", "text")

    def __init__(self, name: str, attributes: dict[str, str]) -> None:
        self.name = name
        self.attributes = attributes
        self.children: list[_Element] = []
        self.text: list[str] = []


def _local(name: str) -> str:
    return name.rpartition(":")[2]  # a prefixed name ("auto-ns3:Field") by its local part


# C0 control characters are not XML, yet Windows writes them raw where an event holds them
# (PrivilegeList of 4661, decoded from binary): they travel through the parser as private-use
# characters and come back as themselves.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BACK = {0xF700 + code: code for code in (*range(0, 9), 11, 12, *range(14, 32))}


def _shelter(match: re.Match[bytes]) -> bytes:
    return chr(0xF700 + match[0][0]).encode("utf-8")


class _TreeBuilder:
    """An expat tree builder that refuses any DTD: no entity can be declared, so none expands
    (billion laughs, external entities); the only entities are XML's five predefined ones."""

    def __init__(self) -> None:
        # No namespace processing: Windows writes no prefixes, and names come out as they are.
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._data
        self.stack: list[_Element] = []
        self.done: list[_Element] = []  # completed <Event> elements
        self.sheltered = False  # control characters were replaced on the way in
        self.error: str | None = None  # why the document cannot be read on

    @staticmethod
    def _doctype(*_: Any) -> None:
        raise ParseError("XML with a DTD (refused: entities could expand)")

    @staticmethod
    def _entity(*_: Any) -> None:
        raise ParseError("XML entity declaration (refused)")

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        stack = self.stack
        if len(stack) >= MAX_XML_DEPTH:
            raise ParseError(f"XML nested deeper than {MAX_XML_DEPTH}")
        if attributes and self.sheltered:
            attributes = {key: value.translate(_CONTROL_BACK) for key, value in attributes.items()}
        # Namespace declarations stay among the attributes, as in evtx's JSON (#attributes).
        element = _Element(_local(name) if ":" in name else name, attributes)
        if stack:
            stack[-1].children.append(element)
        stack.append(element)

    def _end(self, _name: str) -> None:
        element = self.stack.pop()
        if element.name == "Event" and (not self.stack or self.stack[-1].name != "EventData"):
            if self.stack:
                self.stack[-1].children.pop()  # an export's <Events> root keeps nothing
            self.done.append(element)

    def _data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text.append(text.translate(_CONTROL_BACK) if self.sheltered else text)

    def feed(self, data: bytes, final: bool = False) -> list[_Element]:
        if _CONTROL_BYTES.search(data):
            data = _CONTROL_BYTES.sub(_shelter, data)
            self.sheltered = True
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as error:
            self.error = (f"bad XML: {expat.errors.messages[error.code]} at line {error.lineno}, "
                          f"column {error.offset}")
        except ParseError as error:  # a DTD or an entity declaration
            self.error = error.reason
        done, self.done = self.done, []
        return done  # the events completed before an error too; self.error says what broke


def _plain(element: _Element) -> Any:
    """An XML element in the evtx JSON layout (``#attributes``, ``#text``, child names)."""
    if not element.children:
        text = "".join(element.text)  # a leaf's text exactly; between elements it is layout
        if element.attributes:
            return {"#attributes": element.attributes, "#text": text} if text else {"#attributes": element.attributes}
        return text or None
    out: dict[str, Any] = {}
    if element.attributes:
        out["#attributes"] = element.attributes
    for child in element.children:
        value = _plain(child)
        if child.name in out:
            previous = out[child.name]
            out[child.name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.name] = value
    return out


def _event_data_xml(element: _Element) -> dict[str, Any]:
    """<EventData>: named <Data Name=...> fields, unnamed ones as the list ``Data`` (as evtx)."""
    out: dict[str, Any] = {}
    unnamed: list[Any] = []
    for child in element.children:
        # An empty <Data/> is the empty string: XML cannot tell it from a null substitution,
        # and Sysmon's empty RuleName (the common case) is one.
        text = "".join(child.text)
        if child.name == "Data":
            name = child.attributes.get("Name")
            if name is None:
                unnamed.append(text)
            else:
                out[name] = text
        else:
            out[child.name] = _plain(child)
    if unnamed:
        out["Data"] = unnamed[0] if len(unnamed) == 1 else unnamed
    return out


def _leaf(element: _Element | None) -> str | None:
    if element is None:
        return None
    return "".join(element.text) or None


def _number(element: _Element | None) -> Any:
    """A numeric System field as the number evtx gives (text when it is not one)."""
    text = _leaf(element)
    number = _int_or_none(text)
    return text if number is None else number


def _attribute_number(element: _Element, name: str) -> Any:
    value = element.attributes.get(name)
    number = _int_or_none(value)
    return value if number is None else number


def _xml_event(element: _Element, *, source: str) -> Event:
    """An <Event> element as the socflow event its EVTX record gives."""
    system: dict[str, _Element] = {}
    data: dict[str, Any] = {}
    user_data: dict[str, Any] = {}
    message: str | None = None
    for child in element.children:
        if child.name == "System":
            system = {item.name: item for item in child.children}
        elif child.name == "EventData":
            data = _event_data_xml(child)
        elif child.name == "UserData":
            user_data = _event_data(_plain(child))  # flattened as ingest.windows flattens evtx's
        elif child.name == "RenderingInfo":
            for info in child.children:
                if info.name == "Message" and info.text:
                    message = "".join(info.text)
    if not system:
        raise ParseError("not a Windows event: no Event.System", source=source)
    data.update(user_data)
    provider = system.get("Provider")
    attributes = provider.attributes if provider is not None else {}
    execution = system.get("Execution")
    created = system.get("TimeCreated")
    security = system.get("Security")
    event = windows_event(WindowsSystem(
        event_id=_leaf(system.get("EventID")),
        record_id=_leaf(system.get("EventRecordID")) or 0,
        channel=_leaf(system.get("Channel")) or "",
        computer=_leaf(system.get("Computer")) or "",
        provider_name=attributes.get("Name", ""),
        provider_guid=attributes.get("Guid", ""),
        created=created.attributes.get("SystemTime") if created is not None else None,
        level=_number(system.get("Level")),
        task=_number(system.get("Task")),
        opcode=_number(system.get("Opcode")),
        keywords=_leaf(system.get("Keywords")),
        version=_number(system.get("Version")),
        user_id=security.attributes.get("UserID") if security is not None else None,
        execution=(_attribute_number(execution, "ProcessID"), _attribute_number(execution, "ThreadID"))
        if execution is not None and execution.attributes else None,
    ), data, source=source)
    if message:
        event["message"] = message
    return event


def parse_xml_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    """One rendered ``<Event>`` on one line (wevtutil, WEF, ``ToXml()``)."""
    builder = _TreeBuilder()
    events = builder.feed(line.encode("utf-8", "surrogatepass"), final=True)
    if builder.error is not None:
        raise ParseError(builder.error, source=source)
    if len(events) != 1:
        raise ParseError(f"expected one <Event> element, found {len(events)}", source=source)
    return "winxml", _xml_event(events[0], source=source)


def _feed_without_gc(builder: _TreeBuilder, data: bytes, final: bool) -> list[_Element]:
    """``builder.feed`` with the cycle collector paused: a megabyte of XML makes some 30 objects
    an event, all freed by reference counting (a tree without parent links has no cycles), yet
    each allocation burst started collections that walked the whole heap (half the time)."""
    if not gc.isenabled():
        return builder.feed(data, final=final)
    gc.disable()
    try:
        return builder.feed(data, final=final)
    finally:
        gc.enable()


def iter_xml_events(handle: IO[bytes], *, source: str, chunk: int = 1 << 20) -> Iterator[tuple[int, Event | None, str]]:
    """``(position, event_or_None, reason)`` for each <Event> of an XML file (an ``<Events>``
    export, or <Event> elements one after another as a WEC server or ``wevtutil`` writes them).
    A bad event is a dead letter; XML broken past repair ends the file with one."""
    builder = _TreeBuilder()
    head = handle.read(chunk)
    # Elements one after another have no root: give them one, so the file is one document.
    wrapped = not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"<?xml", b"<Events"))
    position = 0
    data = b"<Events>" + head if wrapped else head
    final = False
    while True:
        if not data:
            data, final = (b"</Events>" if wrapped else b""), True
        for element in _feed_without_gc(builder, data, final):
            position += 1
            try:
                yield position, _xml_event(element, source=f"{source}#{position}"), ""
            except ParseError as error:
                yield position, None, error.reason
        if builder.error is not None:
            position += 1
            yield position, None, f"{builder.error} (after event {position - 1})"
            return
        if final:
            return
        data = handle.read(chunk)


def looks_like_xml_file(head: bytes) -> bool:
    """Whether a file's first bytes start a Windows event XML export."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped.startswith((b"<?xml", b"<Events", b"<Event ", b"<Event>")) and b"<Event" in stripped[:4096]


def _looks_like_xml(line: str) -> bool:
    return line.startswith("<Event") and EVENT_NS in line[:200]


# -- syslog payloads: Snare, key=value, JSON ----------------------------------------------------

_SNARE_TAG = "MSWinEventLog"
_SNARE_FIXED = 11  # criticality .. category, after the MSWinEventLog tag
_SNARE_OPTIONAL = re.compile(r"^[A-Za-z][\w.]*=")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_SNARE_LEVELS = {"success audit": 0, "failure audit": 0, "information": 4, "warning": 3, "error": 2,
                 "critical": 1, "verbose": 5}
_SNARE_TIME = re.compile(r"^[A-Za-z]{3} ([A-Za-z]{3}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4})$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _snare_time(text: str, source: str) -> str:
    """Snare's ``Fri Nov 27 09:58:51 2015`` (the agent's clock; UTC where configured so)."""
    match = _SNARE_TIME.match(text.strip())
    if not match or match[1].lower() not in _MONTHS:
        raise ParseError(f"bad Snare date {text[:40]!r}", source=source)
    month = _MONTHS.index(match[1].lower()) + 1
    return coerce_timestamp(f"{match[4]}-{month:02d}-{int(match[2]):02d}T{match[3]}Z")


def from_snare(fields: list[str], *, source: str) -> Event:
    """Snare's record after ``MSWinEventLog``: criticality, log, Snare counter, date, event id,
    source, user, SID type, event type, computer, category, the rendered message, [expanded
    string], the event log's record number, [key=value options]."""
    if len(fields) < _SNARE_FIXED + 2:
        raise ParseError(f"Snare record with {len(fields)} fields, expected at least {_SNARE_FIXED + 2}",
                         source=source)
    (_criticality, channel, _counter, when, event_id, provider, user, _sid_type, event_type, computer,
     category) = fields[:_SNARE_FIXED]
    rest = list(fields[_SNARE_FIXED:])
    while rest and (_SNARE_OPTIONAL.match(rest[-1].strip()) or _MD5.match(rest[-1].strip()) or not rest[-1].strip()):
        rest.pop()
    if not rest or not rest[-1].strip().isdigit():
        raise ParseError("Snare record without the event log's record number", source=source)
    record = rest.pop().strip()
    message = rest[0] if rest else ""
    system = WindowsSystem(
        event_id=event_id.strip(), record_id=record, channel=channel.strip(), computer=computer.strip(),
        provider_name=provider.strip(), provider_guid="", created=_snare_time(when, source),
        level=_SNARE_LEVELS.get(event_type.strip().lower()),
    )
    # The rendered message is all Snare keeps of the EventData. Sysmon's messages name each
    # field ("Image: C:\\...", one a line, which Snare joins with spaces); other providers'
    # do not (Security's "Account Name:" is SubjectUserName or TargetUserName by position).
    sysmon = system.channel.lower() == _SYSMON_CHANNEL
    data = _labelled_fields(message) if sysmon else {}
    event = windows_event(system, data, source=source)
    event["message"] = message.strip()
    winlog = event["winlog"]
    if category.strip() and category.strip() != "None":
        winlog["task_name"] = category.strip()
    if user.strip() and user.strip() != "N/A":
        event["user"] = {"name": user.strip()}
    # Flagged, never silent: rules on EventData fields see none here, and a rule that only
    # excludes by an EventData field (``selection and not filter``) fires where EVTX would not.
    winlog["snare"] = {"event_type": event_type.strip(), "message_only": not data}
    return event


_SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"
# "Label: value" after a line break Snare made two spaces (CR LF); Sysmon's labels are its
# EventData names, written CamelCase.
_LABEL = re.compile(r"(?:^|\s\s)([A-Z][A-Za-z0-9]*): ")


def _labelled_fields(message: str) -> dict[str, Any]:
    """EventData of a Sysmon message as Snare renders it: ``Process Create:  RuleName: -  UtcTime: ...``."""
    labels = list(_LABEL.finditer(message))
    fields: dict[str, Any] = {}
    for number, label in enumerate(labels):
        end = labels[number + 1].start() if number + 1 < len(labels) else len(message)
        fields.setdefault(label[1], message[label.end():end])
    return fields


_KV_PAIR = re.compile(r'((?<![\w.@-])[A-Za-z_@][\w.@-]*|"(?:[^"\\]|\\.)*")='
                      r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s"\']*)'
                      r'(?:\s+|$)', re.S)
_UNESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPED = {"n": "\n", "r": "\r", "t": "\t"}


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPED.get(match[1], match[1])


def parse_kvp(text: str, *, source: str) -> dict[str, str]:
    """NXLog ``to_kvp()`` with space between pairs: ``Key=value Key2="quoted \\"value\\""``; in a
    quoted value a backslash escapes the next character, ``\\n``, ``\\r`` and ``\\t`` are line breaks and tabs."""
    fields: dict[str, str] = {}
    index = 0
    for match in _KV_PAIR.finditer(text):
        if match.start() != index:
            break
        key, value = match.groups()
        if value[:1] in ("'", '"'):
            value = value[1:-1]
            if "\\" in value:
                value = _UNESCAPE.sub(_unescape, value)
        if key[:1] == '"':
            key = _UNESCAPE.sub(_unescape, key[1:-1])  # a name with spaces (Defender's "Threat Name")
        fields[key] = value
        index = match.end()
    if index != len(text):
        raise ParseError(f"bad key=value text at character {index}: {text[index:index + 40]!r}", source=source)
    return fields


def _looks_like_kvp(text: str) -> bool:
    return text.startswith(("EventTime=", "Hostname=", "EventID=")) and "EventID=" in text and "Channel=" in text


def from_kvp(text: str, *, source: str) -> Event:
    fields: dict[str, Any] = parse_kvp(text, source=source)
    return from_nxlog(fields, source=source)


def _merge_syslog(event: Event, windows: Event) -> None:
    """Fill the syslog collector's ``event`` with the Windows event, keeping the syslog fields."""
    syslog_meta = event.get("event", {})
    log = event.get("log")
    received_host = event.get("host")
    event.clear()
    event.update(windows)
    if isinstance(log, dict):
        event["log"] = {**log, **event.get("log", {})}
    if isinstance(received_host, dict) and received_host.get("name") and not event["host"].get("name"):
        event["host"] = received_host
    if isinstance(syslog_meta, dict) and syslog_meta.get("original"):
        event["event"]["original"] = syslog_meta["original"]


def syslog_windows(event: Event, message: syslog_parser.SyslogMessage) -> bool:
    """The catalogue's syslog hook: a Windows event in a syslog message, in any shape here."""
    text = message.message
    source = "syslog"
    windows: Event | None = None
    if _SNARE_TAG in (message.msgid, message.appname) or text.startswith(_SNARE_TAG + "\t"):
        fields = text.split("\t")
        if fields and fields[0] == _SNARE_TAG:
            fields = fields[1:]
        windows = from_snare(fields, source=source)
    elif "{" in text and ('"EventID"' in text or '"System"' in text or '"_EventID"' in text or '"winlog"' in text):
        # A JSON payload; a tag the syslog parser could not read ("Service Control Manager: {")
        # is left in front of it.
        text = text[text.index("{"):]
        try:
            obj = loads_object(text)
        except ParseError:
            return False  # not JSON after all: not ours
        found = windows_json(obj, source=source)
        if found is None:
            return False
        windows = found[1]
    elif _looks_like_kvp(text):
        windows = from_kvp(text, source=source)
    elif text.startswith("<Event") and EVENT_NS in text[:200]:
        windows = parse_xml_line(text, source=source)[1]
    if windows is None:
        return False
    _merge_syslog(event, windows)
    return True


def parse_syslog_windows_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    """``--format snare``: a syslog-format file line whose payload is a Windows event. The other
    messages of the file (a central syslog file mixes Windows and Linux senders) are read as the
    ``syslog`` format reads them, so sniffing a file as this format costs them nothing."""
    from ingest.parsers.linux import parse_syslog_file_line  # linux imports the catalogue, which imports this

    return parse_syslog_file_line(line, source=source, hint=hint)


def _looks_like_syslog_windows(line: str) -> bool:
    if "MSWinEventLog\t" in line[:400]:
        return True
    head = line[:1000]
    return line.startswith("<") and ("EventID=" in head or '"EventID"' in head or '"System"' in head
                                     or '"_EventID"' in head)


_SAMPLE_NXLOG = (
    '{"EventTime":"2026-11-20T10:00:00.123456+07:00","Hostname":"PC-SOTC-012.tinh.gov","Keywords":'
    '"9232379236109516800","EventType":"AUDIT_SUCCESS","SeverityValue":2,"Severity":"INFO","EventID":4688,'
    '"SourceName":"Microsoft-Windows-Security-Auditing","ProviderGuid":"{54849625-5478-4994-A5BA-3E3B0328C30D}",'
    '"Version":2,"Task":13312,"OpcodeValue":0,"RecordNumber":918273,"ExecutionProcessID":4,'
    '"ExecutionThreadID":7612,"Channel":"Security","Category":"Process Creation","Opcode":"Info",'
    '"Level":"0","NewProcessName":"C:\\\\Windows\\\\System32\\\\cmd.exe","CommandLine":"cmd.exe /c whoami",'
    '"ParentProcessName":"C:\\\\Windows\\\\explorer.exe","SubjectUserName":"nva","EventReceivedTime":'
    '"2026-11-20T10:00:01.000000+07:00","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"}'
)
_SAMPLE_GELF = (
    '{"version":"1.1","host":"PC-SOTC-012.tinh.gov","short_message":"A new process has been created.",'
    '"timestamp":1795143600.123,"level":6,"_EventID":4688,"_Channel":"Security","_SourceName":'
    '"Microsoft-Windows-Security-Auditing","_RecordNumber":918273,"_Keywords":"9232379236109516800",'
    '"_NewProcessName":"C:\\\\Windows\\\\System32\\\\cmd.exe","_CommandLine":"cmd.exe /c whoami",'
    '"_SourceModuleName":"eventlog"}'
)
_SAMPLE_XML = (
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider "
    "Name='Microsoft-Windows-Sysmon' Guid='{5770385F-C22A-43E0-BF4C-06F5698FFBD9}'/><EventID>1</EventID>"
    "<Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000"
    "</Keywords><TimeCreated SystemTime='2026-11-20T03:00:00.1234567Z'/><EventRecordID>5521</EventRecordID>"
    "<Correlation/><Execution ProcessID='2940' ThreadID='3712'/><Channel>Microsoft-Windows-Sysmon/Operational"
    "</Channel><Computer>PC-SOTC-012.tinh.gov</Computer><Security UserID='S-1-5-18'/></System><EventData>"
    "<Data Name='Image'>C:\\Windows\\System32\\cmd.exe</Data><Data Name='CommandLine'>cmd.exe /c whoami</Data>"
    "</EventData></Event>"
)
_SAMPLE_SNARE = (
    "<14>Nov 20 10:00:00 PC-SOTC-012 MSWinEventLog\t1\tSecurity\t2174\tFri Nov 20 03:00:00 2026\t1102\t"
    "Microsoft-Windows-Eventlog\tTINH\\nva\tN/A\tSuccess Audit\tPC-SOTC-012.tinh.gov\tLog clear\t"
    "The audit log was cleared.  Subject:  Security ID: S-1-5-21-1-2-3-1104  Account Name: nva\t\t918274"
)
_SAMPLE_KVP = (
    '<14>1 2026-11-20T10:00:00+07:00 PC-SOTC-012 nxlog - - - EventTime="2026-11-20T10:00:00.123456+07:00" '
    'Hostname=PC-SOTC-012.tinh.gov EventID=4688 SourceName=Microsoft-Windows-Security-Auditing '
    'Channel=Security RecordNumber=918273 NewProcessName="C:\\\\Windows\\\\System32\\\\cmd.exe" '
    'CommandLine="cmd.exe /c whoami"'
)

_WINDOWS = {"product": "windows"}

FORMATS: tuple[SourceFormat, ...] = (
    SourceFormat(name="winxml", title="Windows rendered XML events (wevtutil qe /f:xml, WEF/WEC exports)",
                 logsource=_WINDOWS, sample=_SAMPLE_XML, parse=parse_xml_line, looks_like=_looks_like_xml,
                 aliases=("wef", "wevtutil")),
    SourceFormat(name="nxlog", title="NXLog im_msvistalog JSON (to_json), flat EventData fields",
                 logsource=_WINDOWS, sample=_SAMPLE_NXLOG, parse=parse_nxlog_line, looks_like=_looks_like_nxlog),
    SourceFormat(name="gelf", title="NXLog xm_gelf GELF Windows events (_EventID, _Channel...)",
                 logsource=_WINDOWS, sample=_SAMPLE_GELF, parse=parse_nxlog_line, looks_like=_looks_like_gelf),
    SourceFormat(name="snare", title="Windows events over syslog: Snare MSWinEventLog, NXLog key=value or JSON",
                 logsource=_WINDOWS, sample=_SAMPLE_SNARE, parse=parse_syslog_windows_line,
                 looks_like=_looks_like_syslog_windows, syslog=syslog_windows, aliases=("winsyslog", "nxlog-kvp")),
)

SAMPLE_KVP = _SAMPLE_KVP  # README and tests
