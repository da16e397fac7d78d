"""A hostile line must not stall a parser: every parser, over every sample line followed by a long
run of one character class (the shape that makes a ``key=value`` pattern without an anchor try
every start position inside the run, quadratic time: 10^12 steps for 1 MB, a collector hung),
returns an event or a ParseError. Found when the fuzz tests drew an MCU line padded with 1 MB."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.errors import ParseError
from ingest.parsers import PARSERS

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
TAILS = {"word run": "x" * 200_000, "open quote": '"' + "a" * 200_000, "pairs": "a=b " * 50_000,
         "upper run": "A" * 200_000, "key run": "k=" + "v" * 200_000}


def _samples() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.suffix in (".evtx", ".gz", ".pcap", ".pcapng"):
            continue
        try:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            continue
        found += [(path.name, line) for line in lines[:2]]
    return found


@contextmanager
def _hang_guard(seconds: int) -> Iterator[None]:
    # Not a speed check: linear work on these lines takes milliseconds; a quadratic pattern takes
    # hours. The guard turns a hang into a failure that names the parser.
    def expire(*_: object) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_no_parser_stalls_on_a_long_run(tail: str) -> None:
    stalled = []
    for fmt, parse in sorted(PARSERS.items()):
        for name, line in _samples():
            try:
                with _hang_guard(20):
                    parse(line + TAILS[tail], source="long", hint=name)
            except TimeoutError:
                stalled.append(f"{fmt} on {name}")
            except ParseError:
                pass
    assert not stalled, f"parsers that stall on a line ending in a {tail}: {stalled}"
