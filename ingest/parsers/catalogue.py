"""The catalogue of log formats: one :class:`SourceFormat` per format a collector can read.

A parser module for a new source exposes ``FORMATS: tuple[SourceFormat, ...]`` and is named in
:data:`MODULES`; nothing else needs editing. The catalogue serves four readers:

- ``socflow collect files --format NAME`` and the per-file sniffing (``parse``, ``looks_like``);
- the syslog collectors, which offer every message to each format's ``syslog`` hook before the
  Linux program fallbacks (FortiGate, Cisco ASA, CEF, Snare... arrive as syslog payloads);
- ``socflow sources``, the README's format list (``title``, ``logsource``, ``sample``).

A hook or parser raises :class:`ingest.errors.ParseError` with the reason for a record of its
format that it cannot read (a dead letter); it returns ``None`` / ``False`` only for a record
that is not of its format at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from ingest.schema import Event

if TYPE_CHECKING:
    from ingest.parsers.syslog import SyslogMessage

LineParser = Callable[..., tuple[str, Event]]
"""``parse(line, *, source, hint) -> (dataset, event)``; raises ParseError for a bad line."""

SyslogHook = Callable[[Event, "SyslogMessage"], bool]
"""Fill ``event`` (already holding the syslog fields) from ``message``; False: not this format."""

# Parser modules that register formats here, in the order sniffing and syslog hooks try them
# (the most specific first). The built-in formats of ``ingest.parsers`` come before all of them.
MODULES: tuple[str, ...] = (
    "ingest.parsers.winevent",
    # network sources (firewalls, proxy, web server, CEF/LEEF appliances)
    "ingest.parsers.fortigate", "ingest.parsers.cisco_asa", "ingest.parsers.cef", "ingest.parsers.pf_filterlog",
    "ingest.parsers.netfilter", "ingest.parsers.squid", "ingest.parsers.iis",
    # DNS, mail and journald
    "ingest.parsers.journald", "ingest.parsers.exchange", "ingest.parsers.zimbra", "ingest.parsers.windns",
    "ingest.parsers.bind", "ingest.parsers.dnsmasq", "ingest.parsers.postfix", "ingest.parsers.dovecot",
    # the data-center applications: LGSP data axis (WSO2 gateway), video-conference MCU, 1022 hotline and IOC
    "ingest.parsers.lgsp", "ingest.parsers.mcu", "ingest.parsers.callcenter",
)


@dataclass(frozen=True)
class SourceFormat:
    """One log format: how to read it and what it becomes."""

    name: str  # the --format value and metric label, e.g. "fortigate"
    title: str  # one line for people: "FortiGate traffic and event logs (key=value syslog)"
    logsource: Mapping[str, str]  # the Sigma logsource its events get, e.g. {"category": "firewall"}
    sample: str  # one realistic line in the vendor's documented format (README, `socflow sources`)
    parse: LineParser | None = None  # a whole file line (files collector, --format NAME)
    looks_like: Callable[[str], bool] | None = None  # sniffing a file from its first lines
    syslog: SyslogHook | None = None  # the same records arriving as syslog messages
    aliases: tuple[str, ...] = field(default=())  # other --format names for the same parser
    # Further logsources some of its records get (a FortiGate event log, an ASA AAA command):
    # `socflow rules lint` counts a rule on any of them as one that can fire.
    produces: tuple[Mapping[str, str], ...] = field(default=())


@cache
def registered() -> tuple[SourceFormat, ...]:
    """Every catalogued format, in :data:`MODULES` order."""
    formats: list[SourceFormat] = []
    for name in MODULES:
        formats.extend(importlib.import_module(name).FORMATS)
    return tuple(formats)


def line_parsers() -> dict[str, LineParser]:
    """``--format`` names of the catalogued formats that read file lines, with their parsers."""
    parsers: dict[str, LineParser] = {}
    for source in registered():
        if source.parse is not None:
            for name in (source.name, *source.aliases):
                parsers[name] = source.parse
    return parsers


def sniff_line(line: str) -> str | None:
    """The name of the first catalogued format that recognises ``line``, if any."""
    for source in registered():
        if source.parse is not None and source.looks_like is not None and source.looks_like(line):
            return source.name
    return None


@cache
def syslog_hooks() -> tuple[SyslogHook, ...]:
    return tuple(source.syslog for source in registered() if source.syslog is not None)
