"""The network sources' parsers (ingest/parsers/: fortigate, cisco_asa, cef, pf_filterlog, netfilter,
squid, iis) on their sample lines: exact ECS output against golden files, sniffing, and the same
records arriving as syslog messages.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/ingest/test_net_sources.py``
after a deliberate change.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import ParseError, SkippedLineError
from ingest.parsers import PARSERS, iis, sniff
from ingest.parsers import syslog as syslog_parser
from ingest.parsers.catalogue import registered
from ingest.parsers.linux import enrich_program
from ingest.schema import canonical_json

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest" / "net"
GOLDEN = Path(__file__).resolve().parent / "golden" / "net"
RECEIVED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # BSD stamps carry no year: the reception time decides
SOURCES = {"fortigate": "fortigate.log", "asa": "asa.log", "cef": "cef.log", "filterlog": "filterlog.log",
           "netfilter": "netfilter.log", "squid": "squid.log", "iis": "iis.log"}
SYSLOG_BORNE = ("fortigate", "asa", "cef", "filterlog", "netfilter")


def parse_all(fmt: str) -> list[dict[str, Any]]:
    path = DATA / SOURCES[fmt]
    iis._COLUMNS.clear()
    results: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        extra = {"received": RECEIVED} if fmt in SYSLOG_BORNE else {}
        try:
            _, event = PARSERS[fmt](line, source=f"{path.name}:{number}", hint=str(path), **extra)
        except SkippedLineError:
            results.append({"line": number, "skipped": True})
        except ParseError as error:
            assert error.source == f"{path.name}:{number}"
            results.append({"line": number, "dead_letter": error.reason})
        else:
            results.append({"line": number, "event": event})
    return results


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_sample_lines_match_golden(fmt: str) -> None:
    # Canonical JSON, indented so that a change shows as a readable diff.
    text = json.dumps(json.loads("[" + ",".join(canonical_json(item) for item in parse_all(fmt)) + "]"),
                      indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    golden = GOLDEN / f"{fmt}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def by_line(fmt: str) -> dict[int, dict[str, Any]]:
    return {item["line"]: item.get("event") or item for item in parse_all(fmt)}


def test_fortigate_fields() -> None:
    lines = by_line("fortigate")
    deny = lines[1]
    assert deny["@timestamp"] == "2026-12-07T02:15:02.000Z"  # date + time in the zone of tz="+0700"
    assert deny["socflow"]["logsource"] == {"product": "fortigate", "service": "traffic", "category": "firewall"}
    assert deny["source"] == {"ip": "10.20.1.15", "port": 51514, "bytes": 0, "packets": 0}
    assert deny["destination"]["ip"] == "203.0.113.80" and deny["destination"]["port"] == 443
    assert deny["network"] == {"iana_number": "6", "transport": "tcp", "protocol": "https", "bytes": 0}
    assert deny["event"]["action"] == "deny" and deny["event"]["type"] == ["connection", "denied"]
    assert deny["rule"] == {"id": "12", "uuid": "c2d460aa-fe6f-51e8-9505-41b5117dfdd4", "name": "block-outbound-tor"}
    assert deny["observer"]["name"] == "fw-cp001" and deny["host"] == {"name": "fw-cp001"}
    assert lines[2]["source"]["nat"] == {"ip": "198.51.100.2", "port": 51530}
    failed = lines[3]
    assert failed["socflow"]["logsource"] == {"product": "fortigate", "service": "event"}
    assert failed["event"]["outcome"] == "failure" and failed["user"] == {"name": "admin"}
    assert failed["event"]["category"] == ["authentication"]
    assert lines[4]["fortinet"]["firewall"]["cfgpath"] == "firewall.policy"
    assert lines[5]["message"].endswith('with "quoted" text')  # \" inside a quoted value
    open_quote = lines[7]
    assert open_quote["tags"] == ["socflow_unterminated_quote"]
    assert open_quote["message"] == "Administrator admin logged in successfully from ssh(10.10.5.5)"
    # Another program's syslog line in the file reads as the syslog collector reads it; a bare line is no record.
    assert lines[8]["socflow"]["logsource"] == {"product": "linux", "service": "syslog"}
    assert lines[9]["dead_letter"] == "not a FortiGate record"


def test_asa_fields() -> None:
    lines = by_line("asa")
    assert lines[1]["destination"] == {"ip": "10.30.0.10", "port": 22} and lines[1]["rule"]["name"] == \
        "outside_access_in"
    outbound = lines[2]  # outbound: the inside host started it
    assert outbound["source"] == {"ip": "10.20.1.15", "port": 51530}
    assert outbound["destination"] == {"ip": "93.184.216.34", "port": 443}
    assert lines[3]["network"]["bytes"] == 146668 and lines[3]["event"]["duration"] == 30 * 10**9
    assert lines[8]["event"]["outcome"] == "failure" and lines[8]["source"] == {"ip": "203.0.113.45"}
    assert lines[9]["user"] == {"name": "admin"} and lines[9]["event"]["action"] == "admin-login"
    assert lines[12]["socflow"]["logsource"] == {"product": "cisco", "service": "aaa"}
    assert lines[12]["process"]["command_line"] == "access-list outside_access_in extended permit ip any any"
    assert lines[13]["host"]["name"] == "asa-cp002" and lines[13]["source"]["ip"] == "203.0.113.45"
    assert lines[14]["event"]["code"] == "609001"  # an id without a reader keeps its text
    assert lines[15]["dead_letter"].startswith("bad Cisco message id")


def test_cef_and_leef_fields() -> None:
    lines = by_line("cef")
    waf = lines[1]
    assert waf["url"] == {"original": "https://dichvucong.hoagiang.gov.vn/tra-cuu?id=1"}  # \= unescaped
    assert waf["user_agent"] == {"original": "Mozilla/5.0 (X11; Linux x86_64)"}  # a value with spaces
    assert "user" not in waf  # suser=- is no user
    assert waf["@timestamp"] == "2026-12-07T02:20:11.000Z" and waf["event"]["severity"] == 8
    assert lines[2]["socflow"]["logsource"] == {"product": "cef", "category": "firewall"}
    edr = lines[3]
    assert edr["cef"]["name"] == "Virus found | quarantined"  # \| in the header
    assert edr["message"] == "Line one\nLine two with a = sign"
    assert edr["file"]["path"] == "C:\\Users\\lan.pham\\Downloads\\invoice.exe"  # \\ unescaped
    assert lines[4]["dead_letter"] == "CEF header has 3 of its 7 '|'-separated fields"
    assert lines[5]["source"]["port"] == 51514 and lines[5]["@timestamp"] == "2026-12-07T02:20:15.000Z"
    assert lines[6]["leef"]["attributes"]["cat"] == "Suspect Data Hoarding"  # LEEF 2.0, '^' delimiter
    assert lines[7]["destination"] == {"ip": "198.51.100.10"}  # LEEF 2.0, delimiter in hex (0x7c = '|')
    assert lines[8]["event"]["type"] == ["denied"] and lines[8]["event"]["severity"] == 9


def test_filterlog_netfilter_squid_iis_fields() -> None:
    pf = by_line("filterlog")
    assert pf[1]["source"] == {"ip": "203.0.113.45", "port": 51515} and pf[1]["destination"]["port"] == 3389
    assert pf[3]["network"]["type"] == "ipv6" and pf[3]["destination"] == {"ip": "ff02::1"}
    assert pf[4]["@timestamp"] == "2026-12-07T02:22:13.512Z"  # OPNsense, RFC 5424
    nf = by_line("netfilter")
    assert nf[1]["rule"] == {"name": "[UFW BLOCK]"} and nf[1]["event"]["action"] == "block"
    assert nf[1]["destination"] == {"ip": "10.50.0.5", "port": 445} and nf[1]["netfilter"]["flags"] == ["DF", "SYN"]
    assert nf[2]["observer"]["egress"] == {"interface": {"name": "eth0"}} and "direction" not in nf[2]["network"]
    assert nf[3]["network"]["transport"] == "icmpv6" and nf[3]["network"]["type"] == "ipv6"
    assert nf[4]["socflow"]["logsource"] == {"product": "linux", "service": "syslog"}  # an AppArmor line
    assert nf[5]["dead_letter"] == "not a netfilter (iptables/nftables) record"
    squid = by_line("squid")
    assert squid[1]["url"]["extension"] == "exe" and squid[1]["destination"] == {"ip": "198.51.100.7"}
    assert squid[2]["url"] == {"original": "www.google.com:443", "domain": "www.google.com", "port": 443}
    assert squid[3]["event"]["outcome"] == "failure"
    web = by_line("iis")
    assert [n for n, item in web.items() if item.get("skipped")] == [1, 2, 3, 4, 10, 11, 12, 13]
    assert web[6]["url"]["query"] == "ma_ho_so=1'+OR+'1'='1"
    custom = web[14]  # after the header in the middle: other columns, a custom field
    assert custom["iis"]["X-Forwarded-For"] == "203.0.113.45" and custom["host"] == {"name": "MAIL-CAS01"}
    assert custom["user"] == {"name": "HOAGIANG\\lan.pham"} and custom["iis"]["win32_status"] == 2148074254
    assert web[16]["dead_letter"] == "6 values for the 21 #Fields columns"


def test_sniffing_picks_each_format() -> None:
    for fmt, name in SOURCES.items():
        lines = (DATA / name).read_text(encoding="utf-8").splitlines()[:5]
        assert sniff(lines, str(DATA / name)) == fmt


def test_catalogue_samples_parse() -> None:
    for source in registered():
        if source.name in (*SOURCES, "leef"):
            assert source.parse is not None
            _, event = source.parse(source.sample, source="sample", hint="")
            assert event["socflow"]["logsource"].items() >= source.logsource.items()


@pytest.mark.parametrize("fmt", SYSLOG_BORNE)
def test_syslog_messages_read_like_file_lines(fmt: str) -> None:
    """Each sample sent to a syslog server (with a PRI) gives the event its file line gives."""
    for item in parse_all(fmt):
        line = (DATA / SOURCES[fmt]).read_text(encoding="utf-8").splitlines()[item["line"] - 1]
        if not line.startswith("<"):
            continue
        try:
            message = syslog_parser.parse_message(line, received=RECEIVED)
            event = syslog_parser.to_event(message, line)
            enrich_program(event, message)
        except ParseError as error:
            assert item.get("dead_letter") == error.reason
            continue
        if "dead_letter" in item:  # not this format: to a syslog server it is just another message
            assert event["socflow"]["logsource"] == {"product": "linux", "service": "syslog"}
            continue
        assert json.loads(canonical_json(event)) == item["event"]


def test_a_relay_file_mixing_devices_reads_each_line_by_its_format() -> None:
    """rsyslog writes several devices into one file; sniffing saw only the first line."""
    asa = (DATA / "asa.log").read_text(encoding="utf-8").splitlines()[0]
    sshd = "<38>Dec  7 09:30:00 dc-jump01 sshd[2211]: Failed password for root from 203.0.113.45 port 50122 ssh2"
    assert PARSERS["fortigate"](asa, source="mixed", hint="/var/log/relay.log", received=RECEIVED)[0] == "cisco.asa"
    _, event = PARSERS["fortigate"](sshd, source="mixed", hint="/var/log/relay.log", received=RECEIVED)
    assert event["socflow"]["logsource"] == {"product": "linux", "service": "sshd"}


def test_json_lines_quoting_firewall_records_stay_json() -> None:
    message = ("%ASA-4-106023: Deny tcp src outside:203.0.113.45/1 dst inside:10.0.0.1/22 CEF:0|a|b|c| "
               "IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP")
    quoted = json.dumps({"@timestamp": "2026-12-07T02:00:00Z", "message": message})
    assert sniff([quoted]) == "json"


def test_zone_less_device_stamps_use_the_configured_sender_zone() -> None:
    """The ASA's own stamp and a FortiGate record without tz= name no zone: like BSD stamps, they are
    read in the syslog collector's configured zone (collector.syslog_timezone)."""
    from zoneinfo import ZoneInfo

    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    stamps = {}
    for text in ((DATA / "asa.log").read_text(encoding="utf-8").splitlines()[0],
                 '<189>date=2026-12-07 time=09:20:00 devname="fw-cp001" devid="FG1" logid="0000000013" type="traffic"',
                 '<189>date=2026-12-07 time=09:20:00 devname="fw-cp001" devid="FG1" logid="0000000013" tz="+0000"'):
        message = syslog_parser.parse_message(text, received=RECEIVED, zone=hanoi)
        event = syslog_parser.to_event(message, text)
        enrich_program(event, message)
        stamps[event["event"]["dataset"] + text[-8:]] = event["@timestamp"]
    assert list(stamps.values()) == ["2026-12-07T02:21:03.000Z", "2026-12-07T02:20:00.000Z", "2026-12-07T09:20:00.000Z"]
