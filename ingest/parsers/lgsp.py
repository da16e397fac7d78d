"""The LGSP data axis: WSO2 API Manager gateway analytics log (``apim_metrics.log``).

The provincial LGSP (Local Government Service Platform, the data-sharing axis between agency
systems and the national NGSP) runs on WSO2 API Manager. With ELK analytics enabled
(``[apim.analytics] type = "elk"``) the gateway's ``ELKCounterMetric`` logger writes one line per
API call through the ``APIM_METRICS_APPENDER`` pattern ``%d{HH:mm:ss,SSS} [%X{ip}-%X{host}] [%t]
%5p %c{1} %m%n``::

    10:15:02,311 [10.10.7.21-lgsp-gw01] [PassThroughMessageProcessor-12]  INFO ELKCounterMetric
        apimMetrics: apim:response, properties :{"apiName":"CSDLDanCu","apiContext":"/csdldc/1.0",
        "applicationId":"...","applicationName":"MotCua-SoTNMT","userIp":"10.41.2.15",...}

(one line, wrapped here). ``apim:response`` is a call that reached the back end,
``apim:faulty`` one the gateway refused (``errorType`` AUTH / THROTTLED / TARGET_CONNECTIVITY and
the WSO2 ``errorCode``: 900901 invalid credentials, 900908 resource forbidden - the application
is not subscribed to the API...). The stamp holds no date: the event time is the event's
``requestTimestamp`` (UTC); a line without one is a dead letter.

A *consumer* is the calling application (``applicationId`` / ``applicationName``: one per agency
system, each with its own OAuth2 keys), a *service* the API (``apiName`` / ``apiContext``).
ECS: ``source.ip`` (``userIp``), ``user.name`` (``userName``, the token's subject),
``http.request.method``, ``http.response.status_code`` (``proxyResponseCode``), ``url.path``
(``apiContext`` + ``apiResourceTemplate``), ``event.outcome``, ``error.code`` / ``error.type``;
``lgsp.consumer.{id,name,owner}``, ``lgsp.service.{name,version,context,resource}``,
``lgsp.key_type``, ``lgsp.correlation_id``, ``lgsp.backend_latency_ms``; the whole record under
``lgsp.metrics``. Sigma logsource ``{product: lgsp, service: gateway}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ingest.errors import ParseError
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.dns import endpoint
from ingest.schema import Event, format_timestamp, parse_timestamp, stable_id

LOGSOURCE = {"product": "lgsp", "service": "gateway"}
_LINE = re.compile(r"^(?P<time>\d\d:\d\d:\d\d,\d{3}) \[(?P<node>[^\]]*)\] \[(?P<thread>[^\]]*)\] +(?P<level>[A-Z]+) "
                   r"(?P<logger>[\w.$]+) apimMetrics: apim:(?P<kind>[a-z]+), properties :(?P<json>\{.*\})\s*$")
_KINDS = {"response", "faulty"}


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, str) and value and value != "-":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
        return int(value)
    return None


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _record(match: re.Match[str], kind: str, source: str) -> tuple[dict[str, Any], str, str]:
    """The analytics properties, their requestTimestamp and the event time made of it."""
    if kind not in _KINDS:
        raise ParseError(f"unknown WSO2 analytics event apim:{kind}", source=source)
    try:
        record = json.loads(match["json"])
    except ValueError as error:
        raise ParseError(f"WSO2 analytics properties are not JSON: {error}", source=source) from None
    if not isinstance(record, dict):
        raise ParseError("WSO2 analytics properties are not a JSON object", source=source)
    stamp = _text(record, "requestTimestamp")
    if stamp is None:
        raise ParseError("WSO2 analytics event without requestTimestamp", source=source)
    try:
        timestamp = format_timestamp(parse_timestamp(stamp))
    except (ValueError, OverflowError) as error:
        raise ParseError(f"bad requestTimestamp {stamp[:40]!r}: {error}", source=source) from None
    return record, stamp, timestamp


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    match = _LINE.match(line)
    if match is None:
        raise ParseError("not a WSO2 API Manager analytics line (HH:mm:ss,SSS [ip-host] [thread] LEVEL logger "
                         "apimMetrics: apim:KIND, properties :{...})", source=source)
    kind = match["kind"]
    record, stamp, timestamp = _record(match, kind, source)
    status = _status(record.get("proxyResponseCode"))
    failed = kind == "faulty" or (status is not None and status >= 400)
    event: Event = {
        "@timestamp": timestamp,
        "event": {"kind": "event", "module": "wso2", "dataset": "lgsp.gateway", "original": line,
                  "category": ["web"], "type": ["access"], "action": f"apim-{kind}",
                  "outcome": "failure" if failed else "success",
                  "id": stable_id("lgsp", _text(record, "correlationId"), kind, stamp)},
        "log": {"level": match["level"].lower(), "logger": match["logger"]},
        "observer": {"name": match["node"].partition("-")[2] or match["node"], "product": "WSO2 API Manager"},
        "lgsp": _compact({
            "consumer": _compact({"id": _text(record, "applicationId"), "name": _text(record, "applicationName"),
                                  "owner": _text(record, "applicationOwner")}) or None,
            "service": _compact({"name": _text(record, "apiName"), "version": _text(record, "apiVersion"),
                                 "context": _text(record, "apiContext"),
                                 "resource": _text(record, "apiResourceTemplate")}) or None,
            "key_type": _text(record, "keyType"), "correlation_id": _text(record, "correlationId"),
            "backend_latency_ms": record.get("backendLatency") if _text(record, "backendLatency") else None,
            "metrics": record,
        }),
        "socflow": {"logsource": dict(LOGSOURCE)},
    }
    client = _text(record, "userIp")
    if client:
        event["source"] = endpoint(client)
    if _text(record, "userName"):
        event["user"] = {"name": _text(record, "userName")}
    _fill_http(event, record, status)
    return "lgsp.gateway", event


def _fill_http(event: Event, record: dict[str, Any], status: int | None) -> None:
    """HTTP, URL, error and user agent fields (in place)."""
    http: dict[str, Any] = {}
    if _text(record, "apiMethod"):
        http["request"] = {"method": _text(record, "apiMethod")}
    if status is not None:
        http["response"] = {"status_code": status}
    if http:
        event["http"] = http
    context, resource = _text(record, "apiContext"), _text(record, "apiResourceTemplate")
    if context:
        event["url"] = {"path": context.rstrip("/") + (resource or "")}
    error_code = _text(record, "errorCode")
    if error_code or _text(record, "errorType"):
        event["error"] = _compact({"code": error_code, "type": _text(record, "errorType"),
                                   "message": _text(record, "errorMessage")})
    if _text(record, "userAgent"):
        event["user_agent"] = {"original": _text(record, "userAgent")}


def looks_like(line: str) -> bool:
    return _LINE.match(line) is not None


FORMATS = (
    SourceFormat(
        name="lgsp", title="LGSP data axis: WSO2 API Manager gateway analytics (apim_metrics.log)",
        logsource=LOGSOURCE,
        sample='10:15:02,311 [10.10.7.21-lgsp-gw01] [PassThroughMessageProcessor-12]  INFO ELKCounterMetric '
               'apimMetrics: apim:response, properties :{"apiName":"CSDLDanCu","apiVersion":"1.0",'
               '"apiContext":"/csdldc/1.0","apiResourceTemplate":"/congdan/{cccd}","apiMethod":"GET",'
               '"applicationId":"6f1d2c3b-8a7e-4f10-9b2c-1d2e3f4a5b6c","applicationName":"MotCua-SoTNMT",'
               '"applicationOwner":"sotnmt","userName":"motcua-sotnmt@carbon.super","userIp":"10.41.2.15",'
               '"keyType":"PRODUCTION","proxyResponseCode":200,"correlationId":"0b9e6c1a-77d4-4c1e-9d6f-2a1b3c4d5e6f",'
               '"requestTimestamp":"2026-12-07T03:15:02.298Z"}',
        parse=parse_line, looks_like=looks_like, aliases=("wso2-apim",)),
)
