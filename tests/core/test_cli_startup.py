"""``socflow COMMAND`` imports only that command's module: start-up is part of every replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alerts.cli import COMMAND_MODULES, build_parser

REPO = Path(__file__).resolve().parents[2]


def test_a_named_command_builds_only_its_own_parser() -> None:
    parser = build_parser(["--config", "x.yaml", "replay", "--rules", "r", "--output", "-", "events"])
    args = parser.parse_args(["--config", "x.yaml", "replay", "--rules", "r", "--output", "-", "events"])
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
