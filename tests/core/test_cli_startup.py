"""``socflow COMMAND`` imports only that command's module: start-up is part of every replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alerts.cli import COMMAND_MODULES, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_a_named_command_builds_only_its_own_parser() -> None:
    argv = ["--config", "x.yaml", "replay", "--rules", str(REPO / "rules"), "--output", "-", str(REPO / "tests")]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    assert args.command == "replay" and args.config == Path("x.yaml")
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"replay"}


def test_help_and_unknown_words_still_list_every_command() -> None:
    for argv in ([], ["--help"], ["no-such-command"]):
        commands = build_parser(argv)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        assert {"replay", "collect", "run"} <= set(commands)
        assert len(commands) >= len(COMMAND_MODULES) - 1


def test_replay_does_not_import_the_elasticsearch_client() -> None:
    code = ("import sys; from alerts.cli import build_parser; "
            "build_parser(['replay', '--rules', 'r', '--output', '-', 'e']); print('elasticsearch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [
    ["replay", "--rules", "/no/such/rules", "--output", "-", "{events}"],
    ["replay", "--rules", "{rules}", "--output", "-", "/no/such/events.jsonl"],
    ["hunt", "--rules", "/no/such/rules"],
    ["rules", "match", "--rules", "/no/such/rules", "{events}"],
])
def test_a_missing_rule_or_event_path_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Not a traceback once the rules loaded, nor a run over nothing that exits 0."""
    filled = [word.format(rules=REPO / "rules", events=REPO / "README.md") for word in argv]
    with pytest.raises(SystemExit) as exited:
        main(filled)
    assert exited.value.code == 2
    assert "no such file or directory: /no/such/" in capsys.readouterr().err


def test_replay_runs_without_pyflink_and_the_command_keeps_its_exit_code(tmp_path: Path) -> None:
    """Replay builds the keyed stage's plan from detectors/stateful.py, not the Flink shell; and
    the ``socflow`` entry point (``run``: main, then exit past the last collection) exits as main."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"@timestamp": "2026-01-01T00:00:00Z", "message": "hello"}\n', encoding="utf-8")
    code = ("import sys; from alerts.cli import main; "
            f"code = main(['replay', '--rules', {str(REPO / 'rules')!r}, '--output', '-', {str(events)!r}]); "
            "print('pyflink' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.stdout.split()[-2:] == ["False", "0"]
    for argv, expected in ((["--help"], 0), (["replay", "--rules", "/no/such/rules", "--output", "-", "x"], 2)):
        ran = subprocess.run([sys.executable, "-c", "from alerts.cli import run; run()", *argv], cwd=REPO,
                             capture_output=True, text=True, check=False,
                             env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert ran.returncode == expected, ran.stderr
