"""CEF (ArcSight Common Event Format) and LEEF 1.0 / 2.0 (IBM QRadar) records over syslog.

``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|src=10.0.0.1 act=blocked msg=a\\=b``

CEF header fields are separated by ``|``; inside them ``\\|`` is a pipe and ``\\\\`` a
backslash. The extension is ``key=value`` pairs separated by spaces, values may hold spaces: a
value runs to the next `` key=`` whose ``=`` is not escaped; inside values ``\\=``, ``\\\\``,
``\\n`` and ``\\r`` are escapes.

``LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>key=value`` and
``LEEF:2.0|Vendor|Product|Version|EventID|^|key=value^key=value``: LEEF 2.0 names its attribute
delimiter in a sixth header field, as the character itself or in hex (``x5E``, ``0x5E``); a
LEEF 2.0 header without it uses a tab like LEEF 1.0.

Both keep every header field and extension under ``cef.*`` / ``leef.*`` (the Sigma field names
of a rule written for the raw keys) and map the common keys onto ECS (``src`` ->
``source.ip``, ``spt`` -> ``source.port``, ``suser`` -> ``source.user.name`` and ``user.name``,
``act`` -> ``event.action``, ``request`` -> ``url.original``, ``requestClientApplication`` ->
``user_agent.original``; LEEF ``srcPort``, ``usrName``, ``devTime``...). Sigma logsource:
``{product: cef}`` / ``{product: leef}``, plus ``category: firewall`` (or ``proxy``) for devices
known to be firewalls (proxies): the vendor/product table below.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import netcommon
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.syslog import SyslogMessage
from ingest.schema import Event, format_timestamp

# Full ArcSight names -> the short keys, so both spellings map the same way.
_LONG_NAMES = {"sourceAddress": "src", "destinationAddress": "dst", "sourcePort": "spt", "destinationPort": "dpt",
               "sourceUserName": "suser", "destinationUserName": "duser", "deviceAction": "act",
               "sourceHostName": "shost", "destinationHostName": "dhost", "transportProtocol": "proto",
               "bytesIn": "in", "bytesOut": "out", "message": "msg", "receiptTime": "rt",
               "deviceAddress": "dvc", "deviceHostName": "dvchost", "applicationProtocol": "app",
               "sourceMacAddress": "smac", "destinationMacAddress": "dmac", "fileName": "fname"}
# (vendor, product) lower-cased -> Sigma category of devices whose records are firewall / proxy logs.
CATEGORIES = {("fortinet", "fortigate"): "firewall", ("check point", "vpn-1 & firewall-1"): "firewall",
              ("palo alto networks", "pan-os"): "firewall", ("cisco", "asa"): "firewall",
              ("sophos", "xg"): "firewall", ("sonicwall", "firewall"): "firewall", ("juniper", "srx"): "firewall",
              ("blue coat", "proxysg"): "proxy", ("zscaler", "nssweblog"): "proxy", ("squid", "squid"): "proxy"}
_HEADER_SPLIT = re.compile(r"(?<!\\)((?:\\\\)*)\|")
_CEF_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_CEF_ESCAPES = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}
_ESCAPE = re.compile(r"\\(.)")
_SEVERITY_WORDS = {"low": 3, "medium": 5, "high": 8, "very-high": 10, "very high": 10, "unknown": 0}
_TIME_FORMATS = ("%b %d %Y %H:%M:%S.%f", "%b %d %Y %H:%M:%S", "%b %d %H:%M:%S.%f %Y", "%Y-%m-%dT%H:%M:%S.%f%z",
                 "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S")


def _split_header(text: str, count: int) -> list[str]:
    """The first ``count`` ``|``-separated fields (``\\|`` and ``\\\\`` unescaped) and the rest."""
    parts = text.split("|", count)
    if not any("\\" in part for part in parts[:count]):
        return parts  # no escapes in the header: the common case
    parts = []
    start = 0
    for match in _HEADER_SPLIT.finditer(text):
        if len(parts) == count:
            break
        parts.append(_unescape_header(text[start: match.end() - 1]))
        start = match.end()
    parts.append(text[start:])
    return parts


def _unescape_header(text: str) -> str:
    return _ESCAPE.sub(lambda m: m[1] if m[1] in "|\\" else m[0], text) if "\\" in text else text


def cef_extension(text: str) -> dict[str, str]:
    """CEF extension pairs; a value runs to the next unescaped `` key=``."""
    keys = list(_CEF_KEY.finditer(text))
    if not keys and text.strip():
        raise ParseError("CEF extension without key=value pairs")
    found: dict[str, str] = {}
    for index, match in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        value = text[match.end(): end].rstrip(" ")
        found[match[1]] = _ESCAPE.sub(lambda m: _CEF_ESCAPES.get(m[1], m[0]), value) if "\\" in value else value
    return found


def _time(text: str, fmt: str | None = None) -> str | None:
    """CEF ``rt`` / LEEF ``devTime``: epoch milliseconds or one of the documented date formats."""
    text = text.strip()
    if text.isdigit() and len(text) in (10, 13):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return format_timestamp(datetime.fromtimestamp(seconds, UTC))
    formats: tuple[str, ...] = _TIME_FORMATS
    if fmt:  # LEEF devTimeFormat is Java's SimpleDateFormat: the common letters only
        java = fmt
        for letters, directive in (("yyyy", "%Y"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
                                   ("mm", "%M"), ("SSS", "%f"), ("ss", "%S"), ("zzz", "%Z"), ("z", "%Z")):
            java = java.replace(letters, directive)
        formats = (java, *formats)
    for candidate in formats:
        try:
            moment = datetime.strptime(text, candidate)  # noqa: DTZ007 - a zone-less stamp is UTC, set below
        except ValueError:
            continue
        return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return None


def _severity(text: str) -> int | None:
    if text.isdigit() and len(text) <= 2:
        return int(text)
    return _SEVERITY_WORDS.get(text.lower())


def _ecs(event: Event, values: dict[str, str], *, fmt: str, vendor: str, product: str, name: str | None,  # noqa: PLR0912, PLR0915
         code: str, severity: str | None) -> None:
    get = {key: value for key, value in values.items() if value and value != "-"}.get  # "-": none
    meta = event["event"]
    meta.update({"kind": "event", "module": fmt, "dataset": f"{fmt}.{_slug(vendor)}.{_slug(product)}", "code": code})
    category = CATEGORIES.get((vendor.lower(), product.lower()))
    logsource = {"product": fmt, **({"category": category} if category else {})}
    event["socflow"] = {"logsource": logsource}
    level = _severity(severity or "") if severity is not None else None
    if level is not None:
        meta["severity"] = level
    if name:
        meta["reason"] = name
    action = get("act") or get("action")
    if action:
        meta["action"] = action.lower()
        verdict, outcome = netcommon.verdict(action)
        if verdict:
            meta["type"] = [verdict]
            meta["outcome"] = outcome
    outcome = (get("outcome") or "").lower()
    if outcome in ("success", "failure", "failed", "fail", "/success", "/failure"):
        meta["outcome"] = "success" if "success" in outcome else "failure"
    source = netcommon.endpoint(get("src"), get("spt"), domain=get("shost"), mac=get("smac"),
                                bytes=netcommon.number(get("in")))
    destination = netcommon.endpoint(get("dst"), get("dpt"), domain=get("dhost"), mac=get("dmac"),
                                     bytes=netcommon.number(get("out")))
    suser, duser = get("suser"), get("duser")
    if suser:
        source["user"] = {"name": suser}
        event["user"] = {"name": suser}
    if duser:
        destination["user"] = {"name": duser}
        event.setdefault("user", {"name": duser})
    if source:
        event["source"] = source
    if destination:
        event["destination"] = destination
    network = netcommon.transport(get("proto"))
    if get("app"):
        network["protocol"] = str(get("app")).lower()
    if network:
        event["network"] = network
    if get("request"):
        event["url"] = {"original": get("request")}
    if get("requestMethod"):
        event["http"] = {"request": {"method": get("requestMethod")}}
    if get("requestClientApplication"):
        event["user_agent"] = {"original": get("requestClientApplication")}
    if get("msg"):
        event["message"] = get("msg")
    if get("fname"):
        event["file"] = {"name": get("fname"), **({"path": get("filePath")} if get("filePath") else {})}
    observer: dict[str, Any] = {"vendor": vendor, "product": product}
    for key, target in (("dvc", "ip"), ("dvchost", "hostname"), ("deviceExternalId", "serial_number")):
        if get(key):
            observer[target] = get(key)
    if get("deviceInboundInterface"):
        observer["ingress"] = {"interface": {"name": get("deviceInboundInterface")}}
    if get("deviceOutboundInterface"):
        observer["egress"] = {"interface": {"name": get("deviceOutboundInterface")}}
    event["observer"] = observer
    if "host" not in event and (get("dvchost") or get("dvc")):
        event["host"] = {"name": get("dvchost")} if get("dvchost") else {"ip": get("dvc")}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "unknown"


def _payload(event: Event, message: SyslogMessage, marker: str) -> str | None:
    """The CEF/LEEF record of a syslog message; a relay without hostname leaves it in the host slot."""
    text = message.message
    if text.startswith(marker):
        return text
    host = message.hostname or ""
    if host.startswith(marker):  # "Dec  7 10:00:00 CEF:0|..." read the record's start as a host name
        event.pop("host", None)
        event["log"]["syslog"].pop("hostname", None)
        return f"{host} {text}" if text else host
    position = text.find(marker)
    if 0 < position < 64 and text[position - 1] == " ":  # "host CEF:0|..." with the host in the message
        return text[position:]
    return None


def syslog_hook(event: Event, message: SyslogMessage) -> bool:
    text = _payload(event, message, "CEF:")
    if text is not None:
        _cef(event, text)
        return True
    text = _payload(event, message, "LEEF:")
    if text is not None:
        _leef(event, text)
        return True
    return False


def _cef(event: Event, text: str) -> None:
    parts = _split_header(text, 7)
    if len(parts) < 8:
        raise ParseError(f"CEF header has {len(parts) - 1} of its 7 '|'-separated fields")
    version, vendor, product, device_version, code, name, severity, extension = parts
    if not version[4:].strip().isdigit():
        raise ParseError(f"bad CEF version {version[:20]!r}")
    values = {_LONG_NAMES.get(key, key): value for key, value in cef_extension(extension).items()}
    _ecs(event, values, fmt="cef", vendor=vendor, product=product, name=name, code=code, severity=severity)
    event["observer"]["version"] = device_version
    event["cef"] = {"version": version[4:].strip(), "device": {"vendor": vendor, "product": product,
                                                               "version": device_version,
                                                               "event_class_id": code},
                    "name": name, "severity": severity, "extensions": values}
    stamp = _time(values["rt"]) if values.get("rt") else None
    if stamp:
        event["@timestamp"] = stamp


def _leef_delimiter(field: str) -> str:
    if len(field) == 1:
        return field
    lowered = field.lower()
    if lowered.startswith(("0x", "x")):
        try:
            return chr(int(lowered.lstrip("0").lstrip("x"), 16))
        except (ValueError, OverflowError):
            pass
    if field == "\\t":
        return "\t"
    raise ParseError(f"bad LEEF 2.0 delimiter {field[:12]!r}")


def _leef(event: Event, text: str) -> None:
    version = text[5: text.find("|")] if "|" in text else ""
    if version not in ("1.0", "2.0", "1", "2"):
        raise ParseError(f"bad LEEF version {version[:12]!r}")
    two = version.startswith("2")
    parts = _split_header(text, 6 if two else 5)
    if len(parts) < (7 if two else 6):
        raise ParseError(f"LEEF {version} header has too few '|'-separated fields")
    _, vendor, product, device_version, code = parts[:5]
    delimiter = "\t"
    if two:
        delimiter = _leef_delimiter(parts[5]) if parts[5] else "\t"
    attributes = parts[-1]
    values: dict[str, str] = {}
    for item in attributes.split(delimiter):
        key, equals, value = item.partition("=")
        if equals and key.strip():
            values[key.strip()] = value
    renamed = {**values}
    for leef_key, cef_key in (("srcPort", "spt"), ("dstPort", "dpt"), ("usrName", "suser"), ("srcMAC", "smac"),
                              ("dstMAC", "dmac"), ("srcBytes", "in"), ("dstBytes", "out"),
                              ("identHostName", "shost")):
        if leef_key in values:
            renamed[cef_key] = values[leef_key]
    _ecs(event, renamed, fmt="leef", vendor=vendor, product=product, name=values.get("cat"), code=code,
         severity=values.get("sev"))
    event["observer"]["version"] = device_version
    event["leef"] = {"version": version, "device": {"vendor": vendor, "product": product, "version": device_version},
                     "event_id": code, "attributes": values}
    stamp = _time(values["devTime"], values.get("devTimeFormat")) if values.get("devTime") else None
    if stamp:
        event["@timestamp"] = stamp


def looks_like(line: str) -> bool:
    head = line[:200]
    return netcommon.looks_like_text(line) and (("CEF:" in head and head.count("|") >= 3)
                                                or ("LEEF:" in head and "|" in head))


parse_line = netcommon.line_parser(syslog_hook, "CEF or LEEF")


FORMATS = (
    SourceFormat(
        name="cef",
        title="CEF records (ArcSight Common Event Format) over syslog; LEEF lines too",
        logsource={"product": "cef"},
        sample="<134>Dec  7 09:20:11 waf01 CEF:0|Imperva Inc.|SecureSphere|15.1|sqli-01|SQL Injection|8|"
               "src=203.0.113.45 spt=51800 dst=10.30.0.10 dpt=443 act=blocked "
               "request=https://dichvucong.hoagiang.gov.vn/tra-cuu?id\\=1 requestMethod=GET",
        parse=parse_line, looks_like=looks_like, syslog=syslog_hook),
    # The same parser and hook (sniffing and syslog go through "cef"): listed for its own logsource.
    SourceFormat(
        name="leef",
        title="LEEF 1.0 / 2.0 records (IBM QRadar Log Event Extended Format) over syslog",
        logsource={"product": "leef"},
        sample="<13>Dec  7 09:20:16 sw-core01 LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.20.1.20^"
               "dst=198.51.100.9^dstPort=53^proto=17^cat=Suspect Data Hoarding^sev=7",
        parse=parse_line),
)
