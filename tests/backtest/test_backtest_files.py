"""``socflow rules backtest --events``: over the demo's files it finds replay's hits; bad input
gets a clear message and exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.cli import build_parser, main
from alerts.commands import rules_backtest
from alerts.commands.replay import replay
from alerts.scenario import generate
from alerts.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
SQLI = REPO / "rules" / "web" / "web_portal_sql_injection.yml"
SPRAY = REPO / "rules" / "correlation" / "mail_password_spraying.yml"


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    files = generate(tmp_path_factory.mktemp("backtest-demo"), START)
    return [files.mail, files.portal, files.windows]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


def replay_hits(rules: list[Path], files: list[Path], settings: Settings) -> dict[str, set[str]]:
    """Replay's alerts' event ids, per rule."""
    found: dict[str, set[str]] = {}
    for alert in replay(rules, files, settings).detections:
        found.setdefault(alert.rule.id, set()).update(alert.event_ids)
    return found


def _json(args: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> dict:
    parsed = build_parser(["rules"]).parse_args(["rules", "backtest", *args, "--format", "json", "--ids"])
    assert rules_backtest.handler(parsed, settings) == 0
    return json.loads(capsys.readouterr().out)


def test_files_give_replays_hits(demo_files: list[Path], settings: Settings,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    expected = replay_hits([SQLI, SPRAY, REPO / "rules" / "mail"], demo_files, settings)
    report = _json([str(SQLI), str(SPRAY), "--with", str(REPO / "rules" / "mail"),
                    "--events", *map(str, demo_files)], settings, capsys)
    by_id = {rule["rule"]["id"]: rule for rule in report["rules"]}
    assert set(by_id) == {"ba086327-6135-4c19-8d22-8b67a99e1610", "5b0f1f0e-6f57-4b8e-9a51-2c5a8f0e7a12"}
    for rule_id, rule in by_id.items():
        assert set(rule["event_ids"]) == expected[rule_id] and rule["hits"] > 0
    sqli = by_id["ba086327-6135-4c19-8d22-8b67a99e1610"]
    assert sqli["hits"] == 3 and sqli["nodes"]["top"] == [{"value": "dc-portal", "hits": 3}]
    assert {row["value"] for row in sqli["fields"]["cs-uri-query"]["top"]} >= {"ma_ho_so=1;SELECT pg_sleep(10)"}
    assert report["events_read"] == 673 and report["timezone"] == "Asia/Ho_Chi_Minh"
    # --from/--to select the events of the range from the files too: the injections are at 09:00Z
    later = _json([str(SQLI), "--events", *map(str, demo_files), "--from", "2026-11-20T09:00:03Z"], settings, capsys)
    assert later["rules"][0]["hits"] == 1 and later["events_read"] < 673


def test_html_and_table_outputs(demo_files: list[Path], settings: Settings, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "out" / "backtest.html"
    args = build_parser(["rules"]).parse_args(["rules", "backtest", str(SQLI), "--events", *map(str, demo_files),
                                               "--output", str(page)])
    assert rules_backtest.handler(args, settings) == 0
    html = page.read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in html and "ma_ho_so=1;SELECT pg_sleep(10)" in html
    args = build_parser(["rules"]).parse_args(["rules", "backtest", str(SQLI), "--events", *map(str, demo_files)])
    assert rules_backtest.handler(args, settings) == 0
    out = capsys.readouterr()
    assert "hits per rule" in out.out and "portal-web01" in out.out
    assert json.loads(out.err.strip().splitlines()[-1])["hits"] == {"ba086327-6135-4c19-8d22-8b67a99e1610": 3}


@pytest.mark.parametrize(("extra", "message"), [
    (["/nonexistent/rule.yml"], "no such file or directory: /nonexistent/rule.yml"),
    (["{rule}", "--events", "/nonexistent/events.jsonl"], "no such file or directory: /nonexistent/events.jsonl"),
    (["{broken}"], "rule(s) that do not load: {broken}"),
    (["{notyaml}"], "not a readable YAML rule"),
    (["{rule}", "{other}", "--baseline", "{spray}"], "no candidate rule has this id"),
    (["{rule}", "--from", "2026-11-21", "--to", "2026-11-20"], "is after --to"),
    (["{rule}", "--from", "yesterday"], "not a time"),
    (["{rule}", "--format", "html"], "--format html needs --output"),
    (["{spray}"], "rule(s) that do not load"),  # a correlation without the rule it references
])
def test_bad_input_exits_2_with_a_clear_message(extra: list[str], message: str, tmp_path: Path,
                                                demo_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("title: broken\nid: 0e7f0ea4-3f52-4b8e-9f8e-9d1c1d2b6a10\nlogsource: {category: webserver}\n"
                      "detection: {condition: nothing}\n", encoding="utf-8")
    notyaml = tmp_path / "notyaml.yml"
    notyaml.write_text("title: [unclosed\n", encoding="utf-8")
    names = {"rule": str(SQLI), "other": str(REPO / "rules" / "web" / "web_path_traversal.yml"),
             "broken": str(broken), "notyaml": str(notyaml), "spray": str(SPRAY)}
    argv = [part.format(**names) for part in extra]
    if "--events" not in argv:
        argv += ["--events", str(demo_files[1])]
    code = main(["--data-dir", str(tmp_path / "data"), "rules", "backtest", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(**names) in err
