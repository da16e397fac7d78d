"""JSON-lines parsers: ECS-ish events, Windows event exports, Zeek JSON logs, Suricata EVE.

One line is one JSON object. Which parser applies is decided per line from the object's own
keys, so a directory mixing Zeek, EVE and ECS files needs no configuration:

- a Windows event in any JSON shape (``{"Event": {"System": ...}}``, NXLog, GELF, Winlogbeat:
  ``ingest.parsers.winevent``);
- ``event_type`` + ``timestamp``: Suricata EVE;
- ``id.orig_h`` / ``uid`` + ``ts``: a Zeek log (conn, dns, http, or other, from ``_path``,
  the file name, or the fields present);
- ``__REALTIME_TIMESTAMP`` + ``MESSAGE``: a systemd journal entry (``ingest.parsers.journald``);
- anything else: an ECS-ish event, taken as it is (flat dotted keys nested).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.errors import ParseError
from ingest.normalize import coerce_timestamp, loads_object, unflatten
from ingest.parsers import winevent
from ingest.schema import Event, stable_id

_WINDOWS_ID_KEYS = frozenset(winevent.EVENT_ID_KEYS)


def parse_json_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    """``(format, event)`` of one JSON line; raises ParseError with the reason."""
    obj = loads_object(line)
    return parse_json_object(obj, line, source=source, hint=hint)


def parse_json_object(obj: dict[str, Any], line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    if "Event" in obj or "winlog" in obj or not _WINDOWS_ID_KEYS.isdisjoint(obj):
        # evtx JSON, NXLog, GELF, Winlogbeat; a Windows look-alike that fits none: ParseError
        windows = winevent.windows_json(obj, source=source)
        if windows is not None:
            return windows
    if "event_type" in obj and "timestamp" in obj and ("src_ip" in obj or "flow_id" in obj or "stats" in obj):
        return "suricata", parse_eve(obj, line)
    if "ts" in obj and ("uid" in obj or "id.orig_h" in obj or "_path" in obj):
        return "zeek", parse_zeek(obj, line, hint=hint)
    if "__REALTIME_TIMESTAMP" in obj and "MESSAGE" in obj:  # a journald entry among other JSON lines
        from ingest.parsers.journald import parse_entry  # here: journald builds on this package's syslog side

        return parse_entry(obj, line)
    return "json", parse_ecs(obj)


def parse_ecs(obj: dict[str, Any]) -> Event:
    # An @timestamp the event has is put in canonical form by the Normalizer, as every event's is.
    event = unflatten(obj)
    if "@timestamp" not in event:
        for key in ("timestamp", "time", "ts"):
            if key in event and isinstance(event[key], str | int | float):
                event["@timestamp"] = coerce_timestamp(event[key])
                break
    return event


# -- Zeek --------------------------------------------------------------------------------------

_ZEEK_LOGSOURCE = {"conn": "conn", "dns": "dns", "http": "http", "ssl": "ssl", "x509": "x509",
                   "files": "files", "notice": "notice", "smtp": "smtp", "ssh": "ssh", "rdp": "rdp",
                   "smb_files": "smb_files", "dce_rpc": "dce_rpc", "kerberos": "kerberos", "ntlm": "ntlm"}


def _zeek_kind(obj: Mapping[str, Any], hint: str) -> str:  # noqa: PLR0911 - first match wins
    path = obj.get("_path")
    if isinstance(path, str) and path:
        return path
    name = hint.rsplit("/", 1)[-1].split(".", 1)[0]
    if name in _ZEEK_LOGSOURCE:
        return name
    if "conn_state" in obj or "orig_bytes" in obj:
        return "conn"
    if "query" in obj or "qtype_name" in obj:
        return "dns"
    if "method" in obj or "status_code" in obj or "user_agent" in obj:
        return "http"
    if "server_name" in obj or "ja3" in obj:
        return "ssl"
    return "unknown"


def _num(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def parse_zeek(obj: dict[str, Any], line: str, *, hint: str = "") -> Event:  # noqa: PLR0912, PLR0915 - a field map
    kind = _zeek_kind(obj, hint)
    event: Event = {
        "@timestamp": coerce_timestamp(obj["ts"]),
        "event": {"kind": "event", "module": "zeek", "dataset": f"zeek.{kind}", "original": line},
        "zeek": {kind: obj},
        "socflow": {"logsource": {"product": "zeek", "service": _ZEEK_LOGSOURCE.get(kind, kind)}},
    }
    uid = obj.get("uid")
    if isinstance(uid, str) and uid:
        # Zeek's uid names the connection; with the log kind it names the record.
        event["event"]["id"] = stable_id("zeek", kind, uid, obj.get("ts"), obj.get("trans_id"), obj.get("uri"))
    source = {"ip": obj.get("id.orig_h"), "port": obj.get("id.orig_p")}
    destination = {"ip": obj.get("id.resp_h"), "port": obj.get("id.resp_p")}
    if source["ip"] is not None:
        event["source"] = {k: v for k, v in source.items() if v is not None}
    if destination["ip"] is not None:
        event["destination"] = {k: v for k, v in destination.items() if v is not None}
    network: dict[str, Any] = {}
    if isinstance(obj.get("proto"), str):
        network["transport"] = obj["proto"].lower()
    if isinstance(obj.get("community_id"), str):
        network["community_id"] = obj["community_id"]
    if kind == "conn":
        if isinstance(obj.get("service"), str):
            network["protocol"] = obj["service"]
        orig, resp = _num(obj.get("orig_ip_bytes")), _num(obj.get("resp_ip_bytes"))
        if orig is not None or resp is not None:
            network["bytes"] = (orig or 0) + (resp or 0)
        opk, rpk = _num(obj.get("orig_pkts")), _num(obj.get("resp_pkts"))
        if opk is not None or rpk is not None:
            network["packets"] = (opk or 0) + (rpk or 0)
        duration = _num(obj.get("duration"))
        if duration is not None:
            event["event"]["duration"] = int(duration * 1e9)
        event["event"]["category"] = ["network"]
    elif kind == "dns":
        dns: dict[str, Any] = {"question": {}}
        if isinstance(obj.get("query"), str):
            dns["question"]["name"] = obj["query"]
        if isinstance(obj.get("qtype_name"), str):
            dns["question"]["type"] = obj["qtype_name"]
        if isinstance(obj.get("rcode_name"), str):
            dns["response_code"] = obj["rcode_name"]
        answers = obj.get("answers")
        if isinstance(answers, list):
            dns["answers"] = [{"data": str(answer)} for answer in answers]
        if _num(obj.get("trans_id")) is not None:
            dns["id"] = obj["trans_id"]
        event["dns"] = dns
    elif kind == "http":
        http: dict[str, Any] = {}
        if isinstance(obj.get("method"), str):
            http["request"] = {"method": obj["method"]}
        if _num(obj.get("status_code")) is not None:
            http["response"] = {"status_code": obj["status_code"]}
        if http:
            event["http"] = http
        uri = obj.get("uri")
        if isinstance(uri, str):
            event["url"] = {"original": uri, "path": uri.split("?", 1)[0]}
            if isinstance(obj.get("host"), str):
                event["url"]["domain"] = obj["host"]
        if isinstance(obj.get("user_agent"), str):
            event["user_agent"] = {"original": obj["user_agent"]}
    elif kind == "ssl":
        if isinstance(obj.get("server_name"), str):
            event["tls"] = {"client": {"server_name": obj["server_name"]}}
        if isinstance(obj.get("ja3"), str):
            event.setdefault("tls", {}).setdefault("client", {})["ja3"] = obj["ja3"]
    if network:
        event["network"] = network
    return event


# -- Suricata EVE ---------------------------------------------------------------------------------

def parse_eve(obj: dict[str, Any], line: str) -> Event:  # noqa: PLR0912, PLR0915 - a field map
    kind = obj.get("event_type")
    if not isinstance(kind, str) or not kind:
        raise ParseError("EVE record without event_type")
    event: Event = {
        "@timestamp": coerce_timestamp(obj["timestamp"]),
        "event": {"kind": "alert" if kind == "alert" else "event", "module": "suricata",
                  "dataset": f"suricata.{kind}", "original": line},
        "suricata": {"eve": obj},
    }
    logsource = {"product": "suricata", "service": kind}
    if kind == "dns":
        logsource = {"category": "dns"}
    elif kind == "flow":
        logsource = {"category": "firewall"}
    event["socflow"] = {"logsource": logsource}
    flow_id = obj.get("flow_id")
    if flow_id is not None:
        event["event"]["id"] = stable_id("eve", kind, flow_id, obj.get("timestamp"), obj.get("tx_id"))
    if obj.get("src_ip") is not None:
        event["source"] = {"ip": obj["src_ip"]}
        if obj.get("src_port") is not None:
            event["source"]["port"] = obj["src_port"]
    if obj.get("dest_ip") is not None:
        event["destination"] = {"ip": obj["dest_ip"]}
        if obj.get("dest_port") is not None:
            event["destination"]["port"] = obj["dest_port"]
    network: dict[str, Any] = {}
    if isinstance(obj.get("proto"), str):
        network["transport"] = obj["proto"].lower()
    if isinstance(obj.get("community_id"), str):
        network["community_id"] = obj["community_id"]
    if isinstance(obj.get("app_proto"), str):
        network["protocol"] = obj["app_proto"]
    flow = obj.get("flow")
    if isinstance(flow, Mapping):
        to_server, to_client = _num(flow.get("bytes_toserver")) or 0, _num(flow.get("bytes_toclient")) or 0
        network["bytes"] = to_server + to_client
        network["packets"] = (_num(flow.get("pkts_toserver")) or 0) + (_num(flow.get("pkts_toclient")) or 0)
    alert = obj.get("alert")
    if isinstance(alert, Mapping):
        event["rule"] = {k: v for k, v in (("id", alert.get("signature_id")), ("name", alert.get("signature")),
                                          ("category", alert.get("category"))) if v is not None}
        if alert.get("severity") is not None:
            event["event"]["severity"] = alert["severity"]
    dns = obj.get("dns")
    if isinstance(dns, Mapping):
        out: dict[str, Any] = {"question": {}}
        queries = dns.get("queries")
        first = queries[0] if isinstance(queries, list) and queries and isinstance(queries[0], Mapping) else dns
        if isinstance(first.get("rrname"), str):
            out["question"]["name"] = first["rrname"]
        if isinstance(first.get("rrtype"), str):
            out["question"]["type"] = first["rrtype"]
        if isinstance(dns.get("rcode"), str):
            out["response_code"] = dns["rcode"]
        answers = dns.get("answers")
        if isinstance(answers, list):
            out["answers"] = [{"data": str(a.get("rdata")), "type": a.get("rrtype")}
                              for a in answers if isinstance(a, Mapping)]
        event["dns"] = out
    http = obj.get("http")
    if isinstance(http, Mapping):
        if isinstance(http.get("url"), str):
            event["url"] = {"original": http["url"], "path": http["url"].split("?", 1)[0]}
            if isinstance(http.get("hostname"), str):
                event["url"]["domain"] = http["hostname"]
        block: dict[str, Any] = {}
        if isinstance(http.get("http_method"), str):
            block["request"] = {"method": http["http_method"]}
        if _num(http.get("status")) is not None:
            block["response"] = {"status_code": http["status"]}
        if block:
            event["http"] = block
        if isinstance(http.get("http_user_agent"), str):
            event["user_agent"] = {"original": http["http_user_agent"]}
    tls = obj.get("tls")
    if isinstance(tls, Mapping):
        client: dict[str, Any] = {}
        if isinstance(tls.get("sni"), str):
            client["server_name"] = tls["sni"]
        ja3 = tls.get("ja3")
        if isinstance(ja3, Mapping) and isinstance(ja3.get("hash"), str):
            client["ja3"] = ja3["hash"]
        if client:
            event["tls"] = {"client": client}
    if network:
        event["network"] = network
    return event
