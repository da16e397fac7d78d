"""End to end for the DNS, mail and journald sources: their log files through ``socflow collect files``
into a spool, and through ``socflow replay`` (the collector's reading, then the Flink job's detection
core), with the project rules that should fire on them; Postfix and Dovecot over the syslog collector
too (a real TCP listener, real sockets)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml

from alerts.cli import main
from ingest.settings import CollectorSettings
from ingest.spool import read_batches
from ingest.syslog import Listen, serve_syslog
from tests.ingest.test_sources import DATA, SAMPLES

QUICK = CollectorSettings(commit_interval_s=0.1, metrics_port=0)

REPO = Path(__file__).resolve().parents[2]


def spraying_lines() -> list[str]:
    """Failed logons for twelve accounts from one address in six minutes: half SMTP AUTH, half IMAP."""
    lines = []
    for number in range(12):
        stamp = f"Nov 22 11:{number // 2:02d}:{number % 2 * 30:02d}"
        user = f"user{number:02d}@hoagiang.gov.vn"
        if number % 2:
            lines.append(f"{stamp} mail-imap01 dovecot: imap-login: Aborted login (auth failed, 1 attempts in 2 secs): "
                         f"user=<{user}>, method=PLAIN, rip=198.51.100.99, lip=10.10.0.25, TLS, session=<s{number}>")
        else:
            lines.append(f"{stamp} mail-mx01 postfix/submission/smtpd[5{number:03d}]: warning: unknown[198.51.100.99]: "
                         f"SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={user}")
    return lines


def test_collect_files_command_reads_every_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "logs"
    inputs.mkdir()
    for name in SAMPLES:
        shutil.copy(DATA / name, inputs / name)
    assert main(["--data-dir", str(tmp_path / "data"), "collect", "files", str(inputs), "--no-progress"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (stats["events"], stats["dead_letters"], stats["skipped"]) == tuple(
        sum(expected[index] for expected in SAMPLES.values()) for index in (1, 2, 3))
    events = [event for batch in read_batches(tmp_path / "data" / "spool") for event in batch]
    datasets = Counter(event["event"]["dataset"] for event in events)
    assert datasets["bind.log"] == 5 and datasets["windows_dns.log"] == 5 and datasets["dnsmasq.log"] == 9
    assert datasets["postfix.log"] == 13 and datasets["dovecot.log"] == 9 and datasets["zimbra.audit"] == 5
    assert datasets["exchange.message_tracking"] == 4 and datasets["linux.auth"] == 4


def test_replay_fires_the_project_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "logs"
    inputs.mkdir()
    for name in SAMPLES:
        shutil.copy(DATA / name, inputs / name)
    (inputs / "mail-spray.log").write_text("\n".join(spraying_lines()) + "\n", encoding="utf-8")
    output = tmp_path / "alerts.jsonl"
    assert main(["--data-dir", str(tmp_path / "data"), "replay", "--rules", str(REPO / "rules"),
                 "--output", str(output), str(inputs)]) == 0
    alerts = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    names = {rule["id"]: rule["name"] for path in (REPO / "rules").rglob("*.yml")
             if not path.name.endswith(".tests.yml") for rule in [yaml.safe_load(path.read_text(encoding="utf-8"))]}
    fired = Counter(names.get(alert["rule"]["id"]) for alert in alerts)
    assert fired["mail_password_spraying"] == 1
    assert fired["socflow_mail_login_failed"] == 2  # one alert per source address, grouping the failures
    failed = {event["event"]["module"] for alert in alerts
              if names.get(alert["rule"]["id"]) == "socflow_mail_login_failed" for event in alert["events"]}
    assert failed == {"postfix", "dovecot", "zimbra"}
    assert fired["exchange_inbox_rule_external_forward"] == 1  # one mailbox: the mass correlation stays silent
    assert fired["mail_mass_external_forwarding"] == 0
    assert fired["zimbra_forwarding_address_external"] == 1
    assert fired["dns_tunnelling_long_label"] == 2  # per client address: BIND + Windows DNS, dnsmasq
    assert fired["linux_sshd_failed_invalid_user"] >= 1  # from the journal
    spraying = next(alert for alert in alerts if names.get(alert["rule"]["id"]) == "mail_password_spraying")
    assert "198.51.100.99" in json.dumps(spraying)
    modules = {event["event"].get("module") for alert in alerts
               if names.get(alert["rule"]["id"]) == "dns_tunnelling_long_label" for event in alert.get("events", [])}
    assert modules == {"bind", "dnsmasq", "windows_dns"}


def test_syslog_collector_parses_mail_messages(tmp_path: Path) -> None:
    lines = (DATA / "postfix-mail.log").read_text().splitlines()[:11] + (DATA / "dovecot.log").read_text().splitlines()
    spool = tmp_path / "spool"
    stop = threading.Event()
    bound: dict[str, int] = {}
    ready = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        result["stats"] = serve_syslog([Listen("tcp", "127.0.0.1", 0)], spool, settings=QUICK, stop=stop,
                                       ready=lambda ports: (bound.update(ports), ready.set()))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert ready.wait(30)
        with socket.create_connection(("127.0.0.1", bound["tcp"])) as connection:
            connection.sendall(b"".join(f"<22>{line}\n".encode() for line in lines))
        deadline = threading.Event()
        for _ in range(100):
            if sum(len(batch) for batch in read_batches(spool)) >= len(lines):
                break
            deadline.wait(0.1)
    finally:
        stop.set()
        thread.join(30)
    events = [event for batch in read_batches(spool) for event in batch]
    assert len(events) == len(lines)
    services = Counter(event["socflow"]["logsource"].get("service") for event in events)
    assert services == {"mail": 12, "mail-auth": 8}
    failures = [event for event in events if event["event"].get("outcome") == "failure"
                and event["socflow"]["logsource"]["service"] == "mail-auth"]
    assert {event["event"]["module"] for event in failures} == {"postfix", "dovecot"}
    assert all(event["source"]["ip"] == "198.51.100.23" for event in failures)


def test_windows_dns_analytic_events_meet_the_dns_rules(tmp_path: Path) -> None:
    # The analytic log is an event log channel (EVTX / Windows JSON); its query events are tagged
    # category dns (config/logsources.yaml) and the dns rules read QNAME (config/sigma/dns.yml).
    shutil.copy(DATA / "dns-analytic.jsonl", tmp_path / "dns-analytic.jsonl")
    output = tmp_path / "alerts.jsonl"
    assert main(["--data-dir", str(tmp_path / "data"), "replay", "--rules", str(REPO / "rules" / "dns"),
                 "--output", str(output), str(tmp_path / "dns-analytic.jsonl")]) == 0
    alerts = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(alerts) == 1
    assert alerts[0]["socflow"]["logsource"] == {"product": "windows", "service": "dns-server-analytic",
                                                 "category": "dns"}
    assert [event["winlog"]["event_id"] for event in alerts[0]["events"]] == [256, 257]  # not www.example.com
