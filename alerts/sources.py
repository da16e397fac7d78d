"""The source inventory behind ``socflow sources``: which parsers exist, and who sent what.

:func:`parser_rows` lists every format a collector reads: the built-in ones (JSON lines, Linux
auth/syslog/auditd files, web access logs, EVTX and Windows JSON exports) and every format of
the log format catalogue (:mod:`ingest.parsers.catalogue`), with the Sigma logsource its events
get and whether it arrives as file lines, syslog messages or both.

:func:`activity` asks the event store (the ``socflow-events`` alias that ``socflow index events``
fills) which node sent which kind of event in a window, with counts and the last time seen;
:func:`silent_nodes` names the inventory's nodes that sent nothing in it, with the last time
they ever did. That is what a network admin needs to find a source that went quiet: a firewall
whose syslog stopped, a DNS server whose log channel was switched off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from alerts.errors import AlertsError
from ingest.assets import AssetInventory
from ingest.parsers import catalogue
from ingest.schema import format_timestamp

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COMPOSITE_PAGE = 1000


@dataclass(frozen=True)
class ParserRow:
    """One format a collector reads."""

    name: str
    title: str
    logsource: str  # "product=linux service=sshd", or a sentence when it depends on the record
    inputs: str  # "files", "syslog" or "files, syslog"
    aliases: tuple[str, ...] = ()
    sample: str = ""


# The formats of ingest/parsers/__init__.py and ingest/files.py that predate the catalogue.
BUILT_IN = (
    ParserRow("json", "JSON lines: ECS events, Winlogbeat / Elastic Agent, Windows event JSON, Suricata EVE, Zeek",
              "from the record (Windows: by channel and event id)", "files"),
    ParserRow("evtx", "Windows event log files (.evtx)", "product=windows (by channel and event id)", "files"),
    ParserRow("winjson", "Windows event JSON exports (one array or pretty-printed records)",
              "product=windows (by channel and event id)", "files"),
    ParserRow("auth", "Linux auth log (sshd, sudo, su, PAM, useradd)", "product=linux service=sshd|sudo|auth",
              "files, syslog"),
    ParserRow("syslog", "Syslog lines (RFC 3164 / 5424; files or the syslog collector)",
              "product=linux service=syslog, or the catalogued format's", "files, syslog"),
    ParserRow("auditd", "Linux audit log (type=... msg=audit(...))", "product=linux service=auditd", "files"),
    ParserRow("access", "nginx / Apache access log (combined, common, vhost)", "category=webserver", "files"),
)


def logsource_text(logsource: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={logsource[key]}" for key in ("product", "category", "service") if logsource.get(key))


def parser_rows() -> list[ParserRow]:
    """Every format, built-in first, then the catalogue's in its order."""
    rows = list(BUILT_IN)
    for source in catalogue.registered():
        inputs = ", ".join(kind for kind, present in (("files", source.parse), ("syslog", source.syslog)) if present)
        rows.append(ParserRow(source.name, source.title, logsource_text(source.logsource), inputs,
                              tuple(source.aliases), source.sample))
    return rows


def parse_since(text: str) -> timedelta:
    """``30m``, ``6h``, ``1d``, ``2w`` -> a timedelta."""
    match = _DURATION.match(text)
    if match is None or int(match[1]) == 0:
        raise AlertsError(f"--since wants a duration like 30m, 6h, 1d or 2w, not {text!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@dataclass(frozen=True)
class Activity:
    """Events of one kind from one node in the window."""

    node: str
    logsource: str
    dataset: str
    events: int
    last_seen: str | None
    node_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_GROUPS = (("node", "socflow.node.id"), ("product", "socflow.logsource.product"),
           ("category", "socflow.logsource.category"), ("service", "socflow.logsource.service"),
           ("dataset", "event.dataset"))


def _stamp(aggregation: Mapping[str, Any]) -> str | None:
    """A ``max`` aggregation of ``@timestamp`` as RFC 3339 (None when the bucket had no time)."""
    value = aggregation.get("value")
    if not isinstance(value, int | float):
        return None
    return format_timestamp(datetime.fromtimestamp(value / 1000, tz=UTC))


def _buckets(client: Elasticsearch, index: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sources = [{name: {"terms": {"field": field, "missing_bucket": True}}} for name, field in _GROUPS]
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": _COMPOSITE_PAGE, "sources": sources}
        if after:
            composite["after"] = after
        response = client.search(index=index, size=0, query=query, aggs={
            "by": {"composite": composite, "aggs": {"last": {"max": {"field": "@timestamp"}}}}})
        result = response["aggregations"]["by"]
        yield from result["buckets"]
        after = result.get("after_key")
        if not after or len(result["buckets"]) < _COMPOSITE_PAGE:
            return


def activity(client: Elasticsearch, index: str, *, since: timedelta, until: datetime,
             inventory: AssetInventory | None = None) -> list[Activity]:
    """Node x logsource x dataset in ``(until - since, until]``, most recent first."""
    query = {"range": {"@timestamp": {"gt": format_timestamp(until - since), "lte": format_timestamp(until)}}}
    names = {node.id: node.name for node in inventory.nodes} if inventory else {}
    rows = []
    for bucket in _buckets(client, index, query):
        key = bucket["key"]
        node = str(key.get("node") or "-")
        rows.append(Activity(node=node, logsource=logsource_text({k: key.get(k) for k in ("product", "category",
                                                                                        "service")}) or "-",
                             dataset=str(key.get("dataset") or "-"), events=int(bucket["doc_count"]),
                             last_seen=_stamp(bucket["last"]),
                             node_name=names.get(node, "")))
    return sorted(rows, key=lambda row: (row.node, row.logsource, row.dataset))


def silent_nodes(client: Elasticsearch, index: str, inventory: AssetInventory,
                 active: Sequence[Activity]) -> list[dict[str, Any]]:
    """The inventory's nodes with no event in the window, and when each was last seen at all."""
    seen = {row.node for row in active}
    quiet = [node for node in inventory.nodes if node.id not in seen]
    last: dict[str, str | None] = {}
    if quiet:
        response = client.search(index=index, size=0, query={"terms": {"socflow.node.id": [n.id for n in quiet]}},
                                  aggs={"nodes": {"terms": {"field": "socflow.node.id", "size": len(quiet)},
                                                  "aggs": {"last": {"max": {"field": "@timestamp"}}}}})
        for bucket in response["aggregations"]["nodes"]["buckets"]:
            last[str(bucket["key"])] = _stamp(bucket["last"])
    return [{"node": node.id, "name": node.name, "agency": node.agency, "district": node.district,
             "last_seen": last.get(node.id)} for node in quiet]
