"""The ``socflow`` command: one entry point for every operator task.

Each sub-command lives in its own module under ``alerts.commands`` and exposes
``register(subparsers)``; the handler it sets receives the parsed arguments and the settings,
and returns the exit code. Settings are loaded once here and passed down.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socflow",
        description="SOC event pipeline: collect events, run Sigma rules and detectors on Flink, "
        "index alerts into Elasticsearch.",
    )
    parser.add_argument("--config", type=Path, help="settings file (default: config/socflow.yaml)")
    parser.add_argument("--data-dir", type=Path, help="spool, alert stream and state (default: ~/.local/state/socflow)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue  # a command not built yet on this branch
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
