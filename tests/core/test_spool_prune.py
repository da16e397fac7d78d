"""Pruning the spool: only segments the job committed as read, only after the grace period."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest.spool import SpoolWriter, sealed_segments
from ingest.spool_prune import CONSUMED_DIR, CONSUMERS_DIR, prune_consumed

NOW = 1_800_000_000.0


def _spool_with_segments(root: Path, count: int) -> list[str]:
    writer = SpoolWriter(root, "files", batch_size=2)
    for number in range(count):
        writer.append({"event": {"id": f"e{number}"}})
        writer.commit({"a.log": number})
    return [path.name for path in sealed_segments(root)]


def _committed_list(root: Path, name: str, segments: list[str], *, age_s: float) -> Path:
    listing = root / CONSUMED_DIR / name
    listing.parent.mkdir(exist_ok=True)
    listing.write_text("".join(f"{segment}\n" for segment in segments), encoding="utf-8")
    os.utime(listing, (NOW - age_s, NOW - age_s))
    return listing


def test_deletes_listed_segments_after_the_grace_and_the_list_with_them(tmp_path: Path) -> None:
    names = _spool_with_segments(tmp_path, 4)
    old = _committed_list(tmp_path, "consumed-a-0.jsonl", names[:2], age_s=700)
    young = _committed_list(tmp_path, "consumed-a-1.jsonl", names[2:3], age_s=10)
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert (result.segments, result.lists, result.refused) == (2, 1, ())
    assert [path.name for path in sealed_segments(tmp_path)] == names[2:]  # the unlisted one stays too
    assert not old.exists() and young.exists()
    assert prune_consumed(tmp_path, now=NOW + 600, grace_s=600).segments == 1


def test_leaves_in_progress_lists_and_unlisted_segments(tmp_path: Path) -> None:
    names = _spool_with_segments(tmp_path, 2)
    in_progress = _committed_list(tmp_path, ".consumed-a-0.jsonl.inprogress.1234", names, age_s=7200)
    assert prune_consumed(tmp_path, now=NOW, grace_s=600).segments == 0
    assert [path.name for path in sealed_segments(tmp_path)] == names
    assert in_progress.exists()


def test_refuses_names_that_are_not_segments_of_this_spool(tmp_path: Path) -> None:
    names = _spool_with_segments(tmp_path, 1)
    outside = tmp_path / "precious.jsonl"
    outside.write_text("keep\n", encoding="utf-8")
    _committed_list(tmp_path, "consumed-a-0.jsonl", ["../precious.jsonl", "_seg-files-000000000002.jsonl", *names],
                    age_s=700)
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert result.refused == ("../precious.jsonl", "_seg-files-000000000002.jsonl")
    assert result.segments == 1
    assert outside.exists()


def test_a_segment_named_twice_or_already_gone_is_no_error(tmp_path: Path) -> None:
    names = _spool_with_segments(tmp_path, 1)
    _committed_list(tmp_path, "consumed-a-0.jsonl", names, age_s=700)
    _committed_list(tmp_path, "consumed-b-0.jsonl", names, age_s=700)
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert (result.segments, result.lists) == (1, 2)


def test_a_collector_reopened_after_pruning_continues_its_sequence(tmp_path: Path) -> None:
    # Flink's file source remembers every path it read: a reused name would never be read.
    names = _spool_with_segments(tmp_path, 3)
    _committed_list(tmp_path, "consumed-a-0.jsonl", names, age_s=700)
    prune_consumed(tmp_path, now=NOW, grace_s=600)
    writer = SpoolWriter(tmp_path, "files")
    writer.append({"event": {"id": "next"}})
    writer.commit({"a.log": 99})
    assert [path.name for path in sealed_segments(tmp_path)] == ["seg-files-000000000004.jsonl"]


def _register_consumer(root: Path, name: str, done: list[str]) -> Path:
    path = root / CONSUMERS_DIR / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"done": done}), encoding="utf-8")
    return path


def test_waits_for_every_registered_consumer(tmp_path: Path) -> None:
    # The event writer registered itself and finished only the first segment: the job finished three.
    names = _spool_with_segments(tmp_path, 4)
    listing = _committed_list(tmp_path, "consumed-a-0.jsonl", names[:3], age_s=700)
    consumer = _register_consumer(tmp_path, "event-store", names[:1])
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert (result.segments, result.lists, result.waiting) == (1, 0, 2)
    assert [path.name for path in sealed_segments(tmp_path)] == names[1:]
    # The list keeps the awaited names and its commit time: the grace is not restarted.
    assert listing.read_text(encoding="utf-8").split() == names[1:3]
    assert listing.stat().st_mtime == NOW - 700
    consumer.write_text(json.dumps({"done": names}), encoding="utf-8")  # the writer caught up
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert (result.segments, result.lists, result.waiting) == (2, 1, 0)
    assert [path.name for path in sealed_segments(tmp_path)] == names[3:]  # the job has not read the last


def test_the_intersection_of_two_consumers_and_an_unreadable_file_prunes_nothing(tmp_path: Path) -> None:
    names = _spool_with_segments(tmp_path, 3)
    _committed_list(tmp_path, "consumed-a-0.jsonl", names, age_s=700)
    _register_consumer(tmp_path, "event-store", names[:2])
    other = _register_consumer(tmp_path, "archiver", names[1:])
    other.write_text("{torn", encoding="utf-8")
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert result.consumers_unreadable and result.segments == 0
    other.write_text(json.dumps({"done": names[1:]}), encoding="utf-8")
    result = prune_consumed(tmp_path, now=NOW, grace_s=600)
    assert (result.segments, result.waiting) == (1, 2)
    assert [path.name for path in sealed_segments(tmp_path)] == [names[0], names[2]]
