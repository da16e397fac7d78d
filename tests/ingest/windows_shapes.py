"""Converters of Windows event records into the shapes agents ship them (tests only).

Each takes what the EVTX path gives for one record (the ``evtx`` package's JSON record and the
socflow event ``ingest.windows.normalize_record`` makes of it) and writes it the way the agent
does, after its documentation:

- NXLog ``im_msvistalog`` + ``to_json()``: flat, EventData at top level, values as text;
  NXLog's own fields keep their names, an EventData field of the same name is shadowed by
  NXLog's, except ``EventType``, which Sysmon's EventData overwrites;
- NXLog ``xm_gelf``: GELF's keys and every other field with a ``_`` prefix;
- Winlogbeat 8 / Elastic Agent ECS: ``winlog.*`` with the event id and record id as text, task,
  opcode and level as names, UserData under ``winlog.user_data``;
- rendered XML, as ``wevtutil qe /f:xml`` or a WEC export writes it;
- syslog (RFC 3164, RFC 5424) carrying NXLog JSON, NXLog ``to_kvp()`` or Snare's record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ingest.schema import parse_timestamp

SENDER_ZONE = timezone(timedelta(hours=7))  # the province's agents write local time with offset
_AUDIT_SUCCESS, _AUDIT_FAILURE = 0x20000000000000, 0x10000000000000
# NXLog's own fields that shadow an EventData field of the same name (EventType is not among
# them: Sysmon's EventData EventType overwrites NXLog's).
NXLOG_OWNED = frozenset(("EventTime", "Hostname", "Keywords", "SeverityValue", "Severity", "EventID", "SourceName",
                         "ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ExecutionProcessID",
                         "ExecutionThreadID", "Channel", "Category", "Opcode", "Level", "UserID", "AccountName",
                         "Domain", "AccountType", "Message"))
_EVENT_TYPES = {1: "CRITICAL", 2: "ERROR", 3: "WARNING", 4: "INFO", 5: "VERBOSE", 0: "INFO"}
_SEVERITY = {"CRITICAL": (5, "CRITICAL"), "ERROR": (4, "ERROR"), "WARNING": (3, "WARNING"),
             "AUDIT_FAILURE": (4, "ERROR")}


def created(record: dict[str, Any]) -> datetime:
    """TimeCreated of an evtx JSON record (microseconds, UTC)."""
    return parse_timestamp(record["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"])


def text(value: Any) -> Any:
    """A value as NXLog writes an EventData field: text (booleans as XML writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [text(item) for item in value]
    return value


def nxlog_fields(record: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The fields NXLog's im_msvistalog gives the record (before to_json)."""
    winlog = event["winlog"]
    keywords = int(winlog["keywords"], 16) if isinstance(winlog.get("keywords"), str) else 0
    if keywords & _AUDIT_SUCCESS:
        event_type = "AUDIT_SUCCESS"
    elif keywords & _AUDIT_FAILURE:
        event_type = "AUDIT_FAILURE"
    else:
        event_type = _EVENT_TYPES.get(winlog.get("level") or 4, "INFO")
    severity_value, severity = _SEVERITY.get(event_type, (2, "INFO"))
    when = created(record).astimezone(SENDER_ZONE)
    fields: dict[str, Any] = {
        "EventTime": when.isoformat(timespec="microseconds"),
        "Hostname": winlog["computer_name"],
        "Keywords": str(keywords),
        "EventType": event_type,
        "SeverityValue": severity_value,
        "Severity": severity,
        "EventID": winlog["event_id"],
        "SourceName": winlog["provider_name"],
    }
    if winlog.get("provider_guid"):
        fields["ProviderGuid"] = winlog["provider_guid"]
    for key, name in (("version", "Version"), ("task", "Task"), ("opcode", "OpcodeValue")):
        if winlog.get(key) is not None:
            fields[name] = winlog[key]
    fields["RecordNumber"] = winlog["record_id"]
    process = winlog.get("process")
    if process:
        if process.get("pid") is not None:
            fields["ExecutionProcessID"] = process["pid"]
        if process.get("thread", {}).get("id") is not None:
            fields["ExecutionThreadID"] = process["thread"]["id"]
    fields["Channel"] = winlog["channel"]
    fields["Category"] = f"Task {winlog.get('task')}"
    fields["Opcode"] = "Info"
    if winlog.get("level") is not None:
        fields["Level"] = str(winlog["level"])
    if winlog.get("user"):
        fields["UserID"] = winlog["user"]["identifier"]
    fields["Message"] = f"{winlog['provider_name']} event {winlog['event_id']}."  # rendered text
    if winlog.get("user"):
        # NXLog resolves the SID into these
        fields.update({"AccountName": "SYSTEM", "Domain": "NT AUTHORITY", "AccountType": "User"})
    owned = NXLOG_OWNED & set(fields)
    for key, value in winlog["event_data"].items():
        if key in owned or value is None:
            continue  # shadowed by NXLog's own field; NXLog leaves an empty field out
        fields[key] = text(value)
    fields["EventReceivedTime"] = (when + timedelta(seconds=1)).isoformat(timespec="microseconds")
    fields["SourceModuleName"] = "eventlog"
    fields["SourceModuleType"] = "im_msvistalog"
    return fields


def to_nxlog_json(record: dict[str, Any], event: dict[str, Any]) -> str:
    return json.dumps(nxlog_fields(record, event), ensure_ascii=False)


def to_gelf(record: dict[str, Any], event: dict[str, Any]) -> str:
    fields = nxlog_fields(record, event)
    gelf: dict[str, Any] = {
        "version": "1.1",
        "host": fields.pop("Hostname"),
        "short_message": fields.pop("Message"),
        "timestamp": round(created(record).timestamp(), 6),
        "level": 6,
    }
    del fields["EventTime"]
    for key, value in fields.items():
        gelf[f"_{key}"] = value
    return json.dumps(gelf, ensure_ascii=False)


def to_winlogbeat(record: dict[str, Any], event: dict[str, Any]) -> str:
    """Winlogbeat 8's document (``output.file``): names where EVTX has numbers."""
    winlog = event["winlog"]
    root = record["Event"]
    user_data: dict[str, Any] = {}
    if isinstance(root.get("UserData"), dict):
        for wrapper, fields in root["UserData"].items():
            if isinstance(fields, dict):
                user_data = {"xml_name": wrapper, **{key: text(value) for key, value in fields.items()
                                                     if key != "#attributes" and not isinstance(value, dict)}}
    event_data = {key: text(value) for key, value in winlog["event_data"].items()
                  if value is not None and key not in user_data}
    document: dict[str, Any] = {
        "@timestamp": event["@timestamp"],
        "agent": {"type": "winlogbeat", "version": "8.19.0"},
        "event": {"code": str(winlog["event_id"]), "kind": "event", "provider": winlog["provider_name"],
                  "created": "2026-11-20T03:00:00.000Z"},
        "host": {"name": winlog["computer_name"].lower()},
        "log": {"level": "information"},
        "message": f"{winlog['provider_name']} event {winlog['event_id']}.",
        "winlog": {
            "api": "wineventlog", "channel": winlog["channel"], "event_id": str(winlog["event_id"]),
            "provider_name": winlog["provider_name"], "provider_guid": winlog["provider_guid"],
            "computer_name": winlog["computer_name"], "record_id": str(winlog["record_id"]),
            "task": f"Task {winlog.get('task')}", "opcode": "Info", "keywords": ["Classic"],
            "event_data": event_data,
        },
    }
    if user_data:
        document["winlog"]["user_data"] = user_data
    if winlog.get("version") is not None:
        document["winlog"]["version"] = winlog["version"]
    if winlog.get("process"):
        document["winlog"]["process"] = winlog["process"]
    if winlog.get("user"):
        document["winlog"]["user"] = {"identifier": winlog["user"]["identifier"], "name": "SYSTEM",
                                     "domain": "NT AUTHORITY", "type": "User"}
    return json.dumps(document, ensure_ascii=False)


# -- XML --------------------------------------------------------------------------------------

def _xml_text(value: Any, one_line: bool) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    out = escape(str(value))
    if one_line:
        out = out.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#9;")
    return out


def _attrs(attributes: dict[str, Any] | None) -> str:
    if not attributes:
        return ""
    return "".join(f" {name}={quoteattr(str(value))}" for name, value in attributes.items())


def _element(name: str, value: Any, one_line: bool) -> str:
    if isinstance(value, list):
        return "".join(_element(name, item, one_line) for item in value)
    if isinstance(value, dict):
        attributes = value.get("#attributes")
        inner = value.get("#text")
        children = "".join(_element(key, item, one_line) for key, item in value.items()
                           if key not in ("#attributes", "#text"))
        body = children + ("" if inner is None else _xml_text(inner, one_line))
        return f"<{name}{_attrs(attributes)}>{body}</{name}>" if body else f"<{name}{_attrs(attributes)}/>"
    if value is None:
        return f"<{name}/>"
    return f"<{name}>{_xml_text(value, one_line)}</{name}>"


def _event_data(section: Any, one_line: bool) -> str:
    if section is None:
        return "<EventData/>"
    if not isinstance(section, dict):
        return f"<EventData>{_element('Data', section, one_line)}</EventData>"
    parts = []
    for key, value in section.items():
        if key == "#attributes":
            continue
        if key == "Data":
            items = value.get("#text") if isinstance(value, dict) else value
            for item in items if isinstance(items, list) else [items]:
                parts.append(_element("Data", item, one_line))
        elif key == "Binary":
            parts.append(_element("Binary", value, one_line))
        else:
            parts.append(_element("Data", {"#attributes": {"Name": key}, "#text": value}, one_line))
    return f"<EventData{_attrs(section.get('#attributes'))}>{''.join(parts)}</EventData>"


def to_xml(record: dict[str, Any], *, one_line: bool, message: str | None = None) -> str:
    """The record as Windows renders it (``EvtRender``/``wevtutil qe /f:xml``)."""
    root = record["Event"]
    parts = [_element("System", root["System"], one_line)]
    if "EventData" in root:
        parts.append(_event_data(root["EventData"], one_line))
    if "UserData" in root:
        parts.append(_element("UserData", root["UserData"], one_line))
    if message is not None:
        parts.append(f"<RenderingInfo Culture='en-US'><Message>{_xml_text(message, one_line)}</Message>"
                     "<Level>Information</Level><Keywords><Keyword>Audit Success</Keyword></Keywords>"
                     "</RenderingInfo>")
    separator = "" if one_line else "\n  "
    body = separator + separator.join(parts) + ("" if one_line else "\n")
    return f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>{body}</Event>"


# -- syslog -----------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _host(event: dict[str, Any]) -> str:
    return event["winlog"]["computer_name"].split(".")[0] or "-"


def _app(event: dict[str, Any]) -> str:
    return (event["winlog"]["provider_name"] or "eventlog").replace(" ", "_")[:48]


# When the relay sent the records: an RFC 3164 stamp has no year, and the collector reads it as
# the year nearest to reception, where an old record's Feb 29 would not exist.
SENT = datetime(2026, 11, 20, 10, 0, 0, tzinfo=SENDER_ZONE)


def bsd_stamp(when: datetime = SENT) -> str:
    return f"{_MONTHS[when.month - 1]} {when.day:>2} {when:%H:%M:%S}"


def syslog_3164(record: dict[str, Any], event: dict[str, Any], payload: str, tag: str | None = None) -> str:
    return f"<14>{bsd_stamp()} {_host(event)} {tag or _app(event)}: {payload}"


def syslog_5424(record: dict[str, Any], event: dict[str, Any], payload: str, msgid: str = "-") -> str:
    when = created(record).astimezone(SENDER_ZONE).isoformat(timespec="microseconds")
    return f"<14>1 {when} {_host(event)} {_app(event)} - {msgid} - {payload}"


def _kv_value(value: Any) -> str:
    """A key or value as xm_kvp writes it: bare when it can be, else quoted with escapes."""
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    value = str(value)
    if value and all(ch not in value for ch in " \"'\\=\t\r\n"):
        return value
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def to_kvp(record: dict[str, Any], event: dict[str, Any]) -> str:
    """NXLog ``to_kvp()`` (space between pairs, values quoted when they need it)."""
    return " ".join(f"{_kv_value(key)}={_kv_value(value)}" for key, value in nxlog_fields(record, event).items())


def to_snare(record: dict[str, Any], event: dict[str, Any], counter: int) -> str:
    """Snare's tab-delimited record (what follows the syslog header)."""
    winlog = event["winlog"]
    when = created(record).astimezone(UTC)
    # The rendered message: a title, then "Label: value" lines, as Sysmon's messages are (their
    # labels are the EventData names); Snare makes each CR, LF and tab a space.
    lines = [f"{winlog['provider_name']} event {winlog['event_id']}:"] + [
        f"{key}: {'' if value is None else text(value)}" for key, value in winlog["event_data"].items()]
    data = "\r\n".join(str(line) for line in lines).replace("\t", " ").replace("\r", " ").replace("\n", " ")
    fields = ["MSWinEventLog", "1", winlog["channel"], str(counter), when.strftime("%a %b %d %H:%M:%S %Y"),
              str(winlog["event_id"]), winlog["provider_name"], "N/A", "N/A", "Information",
              winlog["computer_name"], "None", data, "", str(winlog["record_id"])]
    return "\t".join(fields)
