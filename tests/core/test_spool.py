"""The spool's two-phase commit: exactly-once segments across crashes at every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingest.errors import SpoolError
from ingest.spool import DeadLetter, SpoolWriter, dead_letters, read_batches, sealed_segments


def _events(n: int, start: int = 0) -> list[dict]:
    return [{"event": {"id": f"e{i}"}, "n": i} for i in range(start, start + n)]


def test_commit_makes_batches_visible_with_offsets(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files", batch_size=3)
    for event in _events(7):
        writer.append(event)
    assert sealed_segments(tmp_path) == []  # nothing visible before commit
    assert writer.commit({"a.log": 700}) == 7
    batches = list(read_batches(tmp_path))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [e["n"] for b in batches for e in b] == list(range(7))
    reopened = SpoolWriter(tmp_path, "files")
    assert reopened.offsets == {"a.log": 700}


def test_uncommitted_data_is_discarded_and_reread(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files", batch_size=2)
    for event in _events(2):
        writer.append(event)
    writer.commit({"a.log": 2})
    # Crash after writing an in-progress segment but before the commit point.
    (tmp_path / "segments" / "_seg-files-000000000002.jsonl").write_text('[{"n": 99}]\n')
    reopened = SpoolWriter(tmp_path, "files")
    assert reopened.offsets == {"a.log": 2}
    assert not list((tmp_path / "segments").glob("_*"))
    assert [e["n"] for b in read_batches(tmp_path) for e in b] == [0, 1]


def test_commit_point_passed_rolls_forward(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files", batch_size=10)
    for event in _events(3):
        writer.append(event)
    writer.dead_letter(DeadLetter("not JSON", "a.log:4", "{oops"))
    # Simulate a crash right after the pending file was written (before any rename).
    original_replace = os.replace
    calls = {"n": 0}

    def crash_on_rename(src: object, dst: object) -> None:
        calls["n"] += 1
        raise RuntimeError("power cut")

    os.replace = crash_on_rename  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            writer.commit({"a.log": 4})
    finally:
        os.replace = original_replace
    assert calls["n"] == 1
    reopened = SpoolWriter(tmp_path, "files")
    assert reopened.offsets == {"a.log": 4}
    assert [e["n"] for b in read_batches(tmp_path) for e in b] == [0, 1, 2]
    assert [d["reason"] for d in dead_letters(tmp_path)] == ["not JSON"]
    # The next commit continues the sequence instead of overwriting the rolled-forward segment.
    reopened.append({"n": 3})
    reopened.commit({"a.log": 5})
    assert len(sealed_segments(tmp_path)) == 2


def test_torn_pending_file_means_no_commit(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files")
    writer.append({"n": 0})
    writer.commit({"a.log": 1})
    (tmp_path / "state" / "files.pending").write_text('{"seq": 2, "offs')
    (tmp_path / "segments" / "_seg-files-000000000002.jsonl").write_text('[{"n": 1}]\n')
    reopened = SpoolWriter(tmp_path, "files")
    assert reopened.offsets == {"a.log": 1}
    assert [e["n"] for b in read_batches(tmp_path) for e in b] == [0]


def test_writers_do_not_touch_each_other(tmp_path: Path) -> None:
    a, b = SpoolWriter(tmp_path, "a"), SpoolWriter(tmp_path, "b")
    a.append({"n": 1})
    b.append({"n": 2})
    a.commit({"x": 1})
    b.commit({"y": 1})
    assert SpoolWriter(tmp_path, "a").offsets == {"x": 1}
    assert len(sealed_segments(tmp_path)) == 2


def test_offsets_alone_commit_without_a_segment(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files")
    writer.commit({"blank.log": 10})
    assert sealed_segments(tmp_path) == []
    assert SpoolWriter(tmp_path, "files").offsets == {"blank.log": 10}


def test_bad_writer_id_and_corrupt_state_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="writer id"):
        SpoolWriter(tmp_path, "../escape")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "w.json").write_text("not json")
    with pytest.raises(SpoolError, match="unreadable spool state"):
        SpoolWriter(tmp_path, "w")


def test_segment_lines_are_json_arrays(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "files", batch_size=2)
    for event in _events(3):
        writer.append(event)
    writer.commit()
    lines = sealed_segments(tmp_path)[0].read_text().splitlines()
    assert all(isinstance(json.loads(line), list) for line in lines)
