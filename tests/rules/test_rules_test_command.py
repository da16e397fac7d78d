"""``socflow rules test``: passes on rules/, fails exactly where a copy was broken, and says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alerts.cli import main

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["rules", "test", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_passes_on_the_project_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(capsys, str(RULES))
    assert code == 0
    assert report["ok"] and report["failed"] == 0 and report["passed"] >= 22
    kinds = {result["kind"] for result in report["results"]}
    assert kinds == {"sigma", "correlation"}


def test_fails_exactly_where_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    # 1. A plain rule whose expectation now asks for one hit more than its events give.
    traversal = rules / "web" / "web_path_traversal.tests.yml"
    traversal.write_text(traversal.read_text(encoding="utf-8").replace("exactly: 2", "exactly: 3"), encoding="utf-8")
    # 2. A correlation rule whose negative events now hold its positives.
    spraying = rules / "correlation" / "mail_password_spraying.tests.yml"
    text = spraying.read_text(encoding="utf-8")
    spraying.write_text(text.replace("negative:", "negative_was:") + "\nnegative:\n" +
                        text.split("positive:", 1)[1].split("negative:", 1)[0], encoding="utf-8")
    code, report = _run(capsys, str(rules))
    assert code == 1
    failed = {Path(result["rule"]).name: result for result in report["results"] if not result["passed"]}
    assert set(failed) == {"web_path_traversal.yml", "mail_password_spraying.yml"}
    traversal_result = failed["web_path_traversal.yml"]
    assert traversal_result["error"] == "expected exactly 3 hits on the positive events, got 2"
    assert traversal_result["first_failing"] is None  # every positive fired: none is to blame alone
    spraying_result = failed["mail_password_spraying.yml"]
    assert spraying_result["kind"] == "correlation"
    assert spraying_result["negative_hits"] >= 1
    assert spraying_result["first_failing"]["side"] == "negative"
    assert report["passed"] == len(report["results"]) - 2


def test_first_failing_event_is_the_positive_that_missed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "web", rules)
    tests = rules / "web_path_traversal.tests.yml"
    tests.write_text(tests.read_text(encoding="utf-8").replace("etc/passwd", "etc/passwd-plain").replace(
        "file=../../../../etc/passwd-plain", "file=etc-passwd-plain"), encoding="utf-8")
    code, report = _run(capsys, str(rules))
    assert code == 1
    (result,) = [r for r in report["results"] if not r["passed"]]
    assert result["first_failing"]["side"] == "positive" and result["first_failing"]["index"] == 0
    assert result["first_failing"]["event"]["url"]["query"] == "file=etc-passwd-plain"


def test_plain_report_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(RULES / "web")]) == 0
    out = capsys.readouterr().out.splitlines()
    count = len(list((RULES / "web").glob("*.tests.yml")))
    assert out[-1] == f"{count} of {count} rule tests passed"
    assert all(line.startswith("PASS\t") for line in out[:-1])


@pytest.mark.parametrize(("name", "content", "error"), [
    ("orphan.tests.yml", "positive: []\n", "no rule orphan.yml beside the test file"),
    ("web_path_traversal.tests.yml", "positive: [\n", "unreadable"),
    ("web_path_traversal.tests.yml", "expect: {roughly: 2}\n", "expect must be"),
    ("web_path_traversal.tests.yml", "expect: {exactly: 1}\npositive: just text\n", "positive must be a list"),
    ("web_path_traversal.tests.yml", "- a list\n", "must each be one YAML mapping"),
])
def test_bad_test_files_fail_with_their_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               name: str, content: str, error: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "web", rules)
    (rules / name).write_text(content, encoding="utf-8")
    code, report = _run(capsys, str(rules))
    assert code == 1
    (failed,) = [r for r in report["results"] if not r["passed"]]
    assert error in failed["error"]


def test_a_rule_that_does_not_load_fails_its_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "web", rules)
    rule = rules / "web_scanner_user_agent.yml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("condition: selection", "condition: nothing_here"),
                    encoding="utf-8")
    code, report = _run(capsys, str(rules))
    assert code == 1
    (failed,) = [r for r in report["results"] if not r["passed"]]
    assert failed["error"].startswith("rule did not load")
    assert report["load_failures"]


def test_hostile_strings_are_escaped_in_the_plain_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "web", rules)
    tests = rules / "web_path_traversal.tests.yml"
    tests.write_text(tests.read_text(encoding="utf-8") + '  - url: {query: "a/../b\\u001b[31m"}\n'
                     '    socflow: {logsource: {category: webserver}}\n', encoding="utf-8")
    assert main(["rules", "test", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\u001b[31m" in out


def test_missing_directory_and_empty_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["rules", "test", str(tmp_path)]) == 1
    assert "no <name>.tests.yml found" in capsys.readouterr().out
