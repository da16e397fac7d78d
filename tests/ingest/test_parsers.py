"""Parsers per format, on real-looking samples read through the file collector."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import ParseError
from ingest.files import collect_paths
from ingest.parsers import sniff
from ingest.parsers.syslog import parse_message, parse_structured_data
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
SETTINGS = CollectorSettings(commit_interval_s=0.5)


def collect(tmp_path: Path, name: str, target: str | None = None) -> tuple[list[dict], list[dict]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / (target or name)
    shutil.copy(DATA / name, source)
    spool = tmp_path / "spool"
    collect_paths([source], spool, settings=SETTINGS)
    events = [event for batch in read_batches(spool) for event in batch]
    return events, list(dead_letters(spool))


def by_action(events: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for event in events:
        grouped.setdefault(event["event"].get("action", ""), []).append(event)
    return grouped


def test_auth_log(tmp_path: Path) -> None:
    events, dead = collect(tmp_path, "auth.log")
    assert len(events) == 11 and len(dead) == 1
    assert dead[0]["reason"] == "no syslog timestamp" and dead[0]["raw"] == "this line is not syslog at all"
    failed = events[0]
    assert failed["event"]["dataset"] == "linux.auth"
    assert failed["socflow"]["logsource"] == {"product": "linux", "service": "sshd"}
    assert failed["event"]["outcome"] == "failure"
    assert failed["user"]["name"] == "admin"
    assert failed["source"] == {"ip": "198.51.100.23", "port": 50122}
    assert failed["host"]["name"] == "dc-jump01" and failed["process"] == {"name": "sshd", "pid": 2211}
    assert failed["event"]["original"].startswith("Nov 22 09:58:01 dc-jump01 sshd[2211]: Failed")
    assert failed["socflow"]["node"]["id"] == "dc-mgmt"  # the reporting host (dc-jump01), not the attacker
    accepted = by_action(events)["ssh_login"][-1]
    assert accepted["event"]["outcome"] == "success" and accepted["user"]["name"] == "nva"
    sudo = [e for e in events if e["socflow"]["logsource"].get("service") == "sudo"]
    assert sudo[0]["process"]["command_line"] == "/usr/bin/cat /etc/shadow"
    assert sudo[0]["user"] == {"name": "nva", "effective": {"name": "root"}}
    assert sudo[1]["event"]["outcome"] == "failure"
    su = by_action(events)["session_opened"][-1]
    assert su["socflow"]["logsource"] == {"product": "linux", "service": "auth"}
    assert su["user"] == {"name": "nva", "effective": {"name": "root"}}
    assert by_action(events)["user_created"][0]["user"]["name"] == "backup2"
    logind = events[10]
    assert logind["socflow"]["logsource"] == {"product": "linux", "service": "auth"}  # auth.log: auth service
    year = datetime.now(UTC).year
    assert failed["@timestamp"][:4] in (str(year - 1), str(year))


def test_auditd(tmp_path: Path) -> None:
    events, dead = collect(tmp_path, "audit.log")
    assert len(events) == 7 and len(dead) == 1
    assert "auditd record" in dead[0]["reason"]
    syscall, execve, _cwd, path, proctitle, login, user_cmd = events
    assert all(e["socflow"]["logsource"] == {"product": "linux", "service": "auditd"} for e in events)
    assert syscall["auditd"]["log"]["key"] == "susp_download" and syscall["auditd"]["log"]["syscall"] == "59"
    assert syscall["process"]["executable"] == "/usr/bin/curl" and syscall["@timestamp"] == "2025-11-22T10:00:00.123Z"
    assert execve["process"]["args"] == ["curl", "-o", "/tmp/x sh.sh"]  # hex-encoded argument decoded
    assert path["auditd"]["log"]["name"] == "/usr/bin/curl"
    assert proctitle["process"]["command_line"] == "curl -o /tmp/x sh.sh"
    assert login["event"]["outcome"] == "failure" and login["source"]["ip"] == "198.51.100.23"
    assert login["user"]["name"] == "root"
    assert user_cmd["auditd"]["log"]["cmd"] == "cat /etc/shadow" and user_cmd["host"]["name"] == "dc-ad01"
    assert user_cmd["socflow"]["node"]["id"] == "dc-core"


def test_nginx_access(tmp_path: Path) -> None:
    events, dead = collect(tmp_path, "nginx-access.log")
    assert len(events) == 5 and len(dead) == 1
    sqlmap, traversal, tls_junk, login, ipv6 = events
    assert all(e["socflow"]["logsource"] == {"category": "webserver"} for e in events)
    assert all(e["event"]["dataset"] == "nginx.access" for e in events)
    assert sqlmap["@timestamp"] == "2026-11-22T03:00:00.000Z"
    assert sqlmap["url"] == {"original": "/dichvucong/search?q=%27%20or%201=1--", "path": "/dichvucong/search",
                             "query": "q=%27%20or%201=1--"}
    assert sqlmap["http"]["request"]["method"] == "GET" and sqlmap["http"]["response"]["status_code"] == 200
    assert sqlmap["user_agent"]["original"].startswith("sqlmap/")
    assert traversal["http"]["response"]["status_code"] == 400
    assert "method" not in tls_junk["http"].get("request", {}) and tls_junk["url"]["original"].startswith("\\x16")
    assert tls_junk["user"]["name"] == "bob"
    assert login["http"]["request"]["referrer"] == "https://portal.hoagiang.gov.vn/"
    assert ipv6["source"]["ip"] == "2001:db8::7" and "body" not in ipv6["http"]["response"]


def test_apache_access(tmp_path: Path) -> None:
    events, dead = collect(tmp_path, "apache-access_log", "apache2-access.log")
    assert len(events) == 2 and not dead
    shellshock, common = events
    assert shellshock["event"]["dataset"] == "apache.access"
    assert shellshock["url"]["domain"] == "portal.hoagiang.gov.vn"
    assert shellshock["user_agent"]["original"] == "() { :; }; /bin/bash -c 'id'"
    assert common["http"]["response"]["status_code"] == 403 and "user_agent" not in common


def test_zeek_logs(tmp_path: Path) -> None:
    conn, dead = collect(tmp_path, "zeek-conn.log", "conn.log")
    assert len(conn) == 2 and len(dead) == 1 and dead[0]["reason"].startswith("bad timestamp")
    first = conn[0]
    assert first["socflow"]["logsource"] == {"product": "zeek", "service": "conn"}
    assert first["event"]["dataset"] == "zeek.conn"
    assert first["source"] == {"ip": "10.20.3.15", "port": 51544}
    assert first["destination"] == {"ip": "10.10.1.20", "port": 443}
    assert first["network"]["bytes"] == 7500 and first["network"]["packets"] == 22
    assert first["network"]["community_id"].startswith("1:")
    assert first["event"]["duration"] == 1_500_000_000
    assert first["zeek"]["conn"]["conn_state"] == "SF"
    dns, _ = collect(tmp_path / "dns", "zeek-dns.log")
    assert dns[0]["dns"]["question"]["name"] == "xmrpool.eu"
    assert dns[0]["socflow"]["logsource"] == {"product": "zeek", "service": "dns"}
    http, _ = collect(tmp_path / "http", "zeek-http.log")
    assert http[0]["url"]["original"] == "/dichvucong/search?q=test"
    assert http[0]["http"]["request"]["method"] == "GET"
    assert http[0]["user_agent"]["original"] == "Mozilla/5.0 (socflow-test)"


def test_suricata_eve(tmp_path: Path) -> None:
    events, dead = collect(tmp_path, "eve.json")
    assert len(events) == 5 and len(dead) == 1
    alert, dns, http, tls, flow = events
    assert alert["event"]["kind"] == "alert" and alert["rule"]["id"] == 2024897
    assert alert["socflow"]["logsource"] == {"product": "suricata", "service": "alert"}
    assert alert["@timestamp"] == "2026-11-22T03:00:00.123Z"
    assert dns["dns"]["question"]["name"] == "portal.hoagiang.gov.vn"
    assert dns["socflow"]["logsource"] == {"category": "dns"}
    assert http["url"]["path"] == "/admin.php" and http["http"]["response"]["status_code"] == 404
    assert tls["tls"]["client"] == {"server_name": "mail.hoagiang.gov.vn", "ja3": "c6bf04ca8f0ede39dd38af7afaf0b52e"}
    assert flow["network"]["bytes"] == 7500 and flow["socflow"]["logsource"] == {"category": "firewall"}


@pytest.mark.parametrize(("name", "expected"), [
    ("auth.log", "auth"), ("audit.log", "auditd"), ("nginx-access.log", "access"), ("eve.json", "json"),
    ("apache-access_log", "access"), ("zeek-conn.log", "json"),
])
def test_sniffing(name: str, expected: str) -> None:
    lines = (DATA / name).read_text().splitlines()[:5]
    assert sniff(lines, name) == expected


RECEIVED = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def test_rfc3164_and_year_inference() -> None:
    message = parse_message("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                            received=RECEIVED)
    assert message.facility == 4 and message.severity == 2
    assert message.timestamp == "2025-10-11T22:14:15.000Z"  # last year: closest to reception
    assert (message.hostname, message.appname, message.procid) == ("mymachine", "su", None)
    local = parse_message("<13>Jan  1 07:04:00 sshd[12]: x", received=RECEIVED,
                          zone=__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh"))
    assert local.timestamp == "2026-01-01T00:04:00.000Z" and local.hostname is None and local.procid == "12"


def test_rfc5424_structured_data_and_zones() -> None:
    text = ('<165>1 2003-10-11T22:14:15.003-07:00 mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][x@1 q="a\\"b\\]c\\\\"] '
            '\ufeffAn application event')
    message = parse_message(text, received=RECEIVED)
    assert message.timestamp == "2003-10-12T05:14:15.003Z"
    assert message.msgid == "ID47" and message.procid is None
    assert message.structured_data == {"exampleSDID@32473": {"iut": "3", "eventSource": "Application",
                                                             "eventID": "1011"}, "x@1": {"q": 'a"b]c\\'}}
    assert message.message == "An application event"
    nil = parse_message("<13>1 - - - - - -", received=RECEIVED)
    assert nil.timestamp == "2026-01-01T00:05:00.000Z" and nil.message == ""


@pytest.mark.parametrize("text", [
    "no pri at all", "<999>Oct 11 22:14:15 host x: y", "<13>1 2026-13-45T99:00:00Z h a - - - m",
    "<13>1 2026-11-22T10:00:00Z h a - - [unterminated x=\"1\" m", "<13>Feb 30 10:00:00 h a: impossible date",
    "<13>1 2026-11-22T10:00:00Z h", "<13>1 2026-11-22T10:00:00Z h a - - [id k=v] m",
])
def test_malformed_syslog_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_message(text, received=RECEIVED)


def test_structured_data_nil() -> None:
    assert parse_structured_data("- rest") == ({}, "rest")
