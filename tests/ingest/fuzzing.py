"""Shared by the parser fuzz tests: hypothesis strategies (sample lines cut, spliced and salted with
odd characters; whole files mixing samples, mutants, random bytes and invalid UTF-8) and the check
that the file collector accounts for every line it was given."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.files import CHUNK, collect_paths
from ingest.parsers import PARSERS
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
ODD = ['"', "{", "}", "[", "(", "<", "\\", "=", ";", ":", ","]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"]


def mutated(samples: Sequence[str], *, odd: Sequence[str] = ODD, min_edits: int = 0) -> st.SearchStrategy[str]:
    """A line of ``samples`` cut, spliced with ``odd`` characters or another sample, or random text."""

    @st.composite
    def strategy(draw: st.DrawFn) -> str:
        if draw(st.integers(0, 4)) == 0:
            return draw(st.text(max_size=300))
        line = draw(st.sampled_from(samples))
        for _ in range(draw(st.integers(min_edits, min_edits + 4))):
            position = draw(st.integers(0, len(line)))
            action = draw(st.sampled_from(["cut", "insert", "delete", "splice", "odd"]))
            if action == "cut":
                line = line[:position]
            elif action == "insert":
                line = line[:position] + draw(st.text(max_size=8)) + line[position:]
            elif action == "delete":
                line = line[:position] + line[position + draw(st.integers(1, 10)):]
            elif action == "splice":
                line = line[:position] + draw(st.sampled_from(samples))[position:]
            else:
                line = line[:position] + draw(st.sampled_from(odd)) + line[position:]
        return line

    return strategy()


def file_lines(draw: st.DrawFn, own: Sequence[str], others: Sequence[str]) -> list[bytes]:
    """1-12 lines for one file: its format's samples, mutants of any sample, random bytes, bad UTF-8."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["sample", "sample", "mutated", "bytes", "bad utf-8"]))
        if kind == "sample":
            lines.append(draw(st.sampled_from(own)).encode())
        elif kind == "mutated":
            lines.append(draw(mutated(others)).encode("utf-8", "surrogatepass"))
        elif kind == "bytes":
            lines.append(draw(st.binary(max_size=200)))
        else:
            line = draw(st.sampled_from(own)).encode()
            position = draw(st.integers(0, len(line)))
            lines.append(line[:position] + draw(st.sampled_from(BAD_UTF8)) + line[position:])
    return [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]


@dataclass(frozen=True)
class Collected:
    """What the file collector made of one fuzzed file."""

    skipped: int
    events: list[dict[str, Any]]
    letters: list[dict[str, Any]]


def collect_accounting(source: Path, content: bytes, fmt: str) -> Collected:
    """Collect ``content`` written to ``source`` and check that nothing was lost silently: every
    non-empty line (a line longer than the read chunk counts as one record per chunk) is an event,
    a dead letter with its reason and source, or a counted skipped line; every event has a UTC
    timestamp and an id."""
    source.write_bytes(content)
    spool = source.parent / "spool"
    stats = collect_paths([source], spool, settings=CollectorSettings(), fmt=fmt, progress=False)
    records = sum(-(-len(line) // CHUNK) for line in content.split(b"\n") if line.strip())
    events = [event for batch in read_batches(spool) for event in batch]
    letters = list(dead_letters(spool))
    assert (len(events), len(letters)) == (stats.events, stats.dead_letters)
    assert stats.events + stats.dead_letters + stats.skipped == records
    assert all(letter["reason"] and letter["source"].startswith(str(source)) for letter in letters)
    assert all(event["@timestamp"].endswith("Z") and event["event"]["id"] for event in events)
    return Collected(stats.skipped, events, letters)


def samples_of(files: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each format's sample lines (``files``: format -> file under tests/data/ingest), and all of
    them that are not blank."""
    samples = {fmt: (DATA / name).read_text(encoding="utf-8").splitlines() for fmt, name in files.items()}
    return samples, [line for lines in samples.values() for line in lines if line.strip()]


def parsed_or_refused(fmt: str, line: str, hint: str) -> dict[str, Any] | None:
    """The parser's event, JSON-serialisable; None when it refused the line with a reason (a
    ParseError without one, or any other exception, fails the test)."""
    try:
        _, event = PARSERS[fmt](line, source="fuzz", hint=hint)
    except ParseError as error:
        assert error.reason
        return None
    json.dumps(event)
    return event
