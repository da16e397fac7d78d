"""The ``socflow`` command: one entry point for every operator task.

Each sub-command lives in its own module under ``alerts.commands`` and exposes
``register(subparsers)``; the handler it sets receives the parsed arguments and the settings,
and returns the exit code. Settings are loaded once here and passed down.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from alerts.errors import AlertsError
from alerts.settings import load_settings
from detectors.errors import DetectorError
from ingest.errors import IngestError

# Sub-command modules, in the order --help lists them.
COMMAND_MODULES = (
    "alerts.commands.demo",
    "alerts.commands.stack",
    "alerts.commands.collect",
    "alerts.commands.sources",
    "alerts.commands.run",
    "alerts.commands.index",
    "alerts.commands.replay",
    "alerts.commands.hunt",
    "alerts.commands.events",
    "alerts.commands.rules",
    "alerts.commands.retention",
    "alerts.commands.serve",
    "alerts.commands.users",
    "alerts.commands.audit",
    "alerts.commands.alerts",
    "alerts.commands.report",
    "alerts.commands.scheduler",
)


# Global options that take a value (the command is the first other word of the command line).
_VALUED_OPTIONS = ("--config", "--data-dir")


def _command_named(argv: Sequence[str]) -> str | None:
    words = iter(argv)
    for word in words:
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command; of only the one ``argv`` names when it names one, since
    importing every command's module (the Elasticsearch client, PyFlink's helpers...) costs about
    a second of start-up that a ``socflow replay`` does not need."""
    command = _command_named(argv) if argv is not None else None
    if command is not None:
        name = f"alerts.commands.{command}"
        if name in COMMAND_MODULES:
            parser, subparsers = _base_parser()
            importlib.import_module(name).register(subparsers)
            if command in subparsers.choices:
                return parser
    parser, subparsers = _base_parser()
    for module in present_modules(COMMAND_MODULES):
        module.register(subparsers)
    return parser


def present_modules(names: Sequence[str]) -> Iterator[ModuleType]:
    """Import each named module, skipping one that does not exist (not built yet on this branch)."""
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise  # the module exists but something it imports does not: a real error


def _base_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="socflow",
        description="SOC event pipeline: collect events, run Sigma rules and detectors on Flink, "
        "index alerts into Elasticsearch.",
    )
    parser.add_argument("--config", type=Path, help="settings file (default: config/socflow.yaml)")
    parser.add_argument("--data-dir", type=Path, help="spool, alert stream and state (default: ~/.local/state/socflow)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # PyFlink's process mode pulls in Apache Beam, which logs its optional features at INFO; the
    # Elasticsearch client logs every request at INFO.
    for noisy in ("apache_beam", "py4j", "elastic_transport"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    try:
        settings = load_settings(args.config, **overrides)
        return int(args.handler(args, settings))
    except (IngestError, DetectorError, AlertsError) as error:
        print(f"socflow: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run() -> NoReturn:
    """The ``socflow`` command: :func:`main`, then exit without the interpreter's last collection.

    After a replay or a hunt the heap holds the compiled rule set's millions of objects, some in
    reference cycles; the collection Python makes on the way out walked them all, 0.25 CPU s of
    a 99,060-event replay (4%), to free memory the process hands back anyway. Freezing moves
    them out of its reach; files, logs and exit handlers finish as usual. (Not in :func:`main`,
    which tests call in their own long-lived process.)"""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
