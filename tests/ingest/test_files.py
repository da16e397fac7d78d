"""File collector: JSON lines, Windows exports and EVTX, offsets, rotation and truncation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.files import collect_paths
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
SETTINGS = CollectorSettings(commit_interval_s=0.2, poll_interval_s=0.05)


def events_of(spool: Path) -> list[dict]:
    return [event for batch in read_batches(spool) for event in batch]


def test_jsonl_events_dead_letters_and_rerun(tmp_path: Path) -> None:
    source = tmp_path / "app.jsonl"
    shutil.copy(DATA / "ecs.jsonl", source)
    spool = tmp_path / "spool"
    stats = collect_paths([source], spool, settings=SETTINGS)
    assert (stats.events, stats.dead_letters) == (4, 3)
    assert stats.bytes == source.stat().st_size
    events = events_of(spool)
    first, flat, epoch, no_time = events
    assert first["event"]["id"] == "given-id-1"
    assert first["socflow"]["node"]["id"] == "dc-portal"
    assert first["socflow"]["logsource"] == {"product": "portal"}
    assert first["socflow"]["collector"] == {"name": "files", "input": "file"}
    assert first["log"]["file"]["path"] == str(source)
    assert flat["@timestamp"] == "2026-11-20T01:00:01.000Z"
    assert flat["host"]["name"] == "ag-003-pc17" and flat["user"]["name"] == "lvb"
    assert flat["socflow"]["node"]["id"] == "cp-003"
    assert epoch["@timestamp"] == "2025-11-20T08:00:00.000Z"
    assert epoch["socflow"]["node"]["id"] == "unknown"
    assert no_time["@timestamp"].endswith("Z") and no_time["socflow"]["node"]["id"] == "dc-portal"
    assert len({event["event"]["id"] for event in events}) == 4
    reasons = [letter["reason"] for letter in dead_letters(spool)]
    assert reasons[0] == "not a JSON object but list"
    assert reasons[1].startswith("not JSON")
    assert reasons[2].startswith("bad timestamp")

    again = collect_paths([source], spool, settings=SETTINGS)
    assert (again.events, again.dead_letters, again.bytes) == (0, 0, 0)
    assert len(events_of(spool)) == 4

    # Appending continues from the offset; ids stay deterministic for the same position.
    with source.open("a") as handle:
        handle.write('{"message": "appended"}\n')
    more = collect_paths([source], spool, settings=SETTINGS)
    assert more.events == 1
    assert events_of(spool)[-1]["message"] == "appended"


def test_same_input_gives_same_ids(tmp_path: Path) -> None:
    source = tmp_path / "app.jsonl"
    shutil.copy(DATA / "ecs.jsonl", source)
    collect_paths([source], tmp_path / "a", settings=SETTINGS)
    collect_paths([source], tmp_path / "b", settings=SETTINGS, writer_id="other")
    ids_a = [e["event"]["id"] for e in events_of(tmp_path / "a")]
    ids_b = [e["event"]["id"] for e in events_of(tmp_path / "b")]
    assert ids_a == ids_b


def test_windows_json_export(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    stats = collect_paths([DATA / "windows_export.json"], spool, settings=SETTINGS)
    assert (stats.events, stats.dead_letters) == (2, 1)
    sysmon, failed_logon = events_of(spool)
    assert sysmon["socflow"]["logsource"] == {"product": "windows", "service": "sysmon",
                                              "category": "process_creation"}
    assert sysmon["winlog"]["event_data"]["CommandLine"].endswith("QA=")
    assert sysmon["socflow"]["node"]["id"] == "dc-core"
    assert sysmon["@timestamp"] == "2026-11-20T08:15:42.123Z"
    assert failed_logon["socflow"]["logsource"] == {"product": "windows", "service": "security"}
    assert failed_logon["source"]["ip"] == "10.20.7.44"
    assert "EventID" in next(dead_letters(spool))["reason"]
    assert collect_paths([DATA / "windows_export.json"], spool, settings=SETTINGS).events == 0


def test_json_lines_with_a_torn_first_line_lose_only_that_line(tmp_path: Path) -> None:
    # Found by the fuzz tests: a .json file of JSON lines whose first line a crash tore was read as
    # one JSON document, and the whole file became one dead letter with nothing in it.
    lines = [line for line in (DATA / "journald.json").read_text(encoding="utf-8").splitlines() if line.strip()]
    torn = next(line for line in lines if "torn" in line)
    whole = [line for line in lines if "torn" not in line][:2]
    source = tmp_path / "journal.json"
    source.write_text("\n".join([torn, *whole]) + "\n", encoding="utf-8")
    spool = tmp_path / "spool"
    stats = collect_paths([source], spool, settings=SETTINGS)
    assert (stats.events, stats.dead_letters) == (2, 1)
    assert next(dead_letters(spool))["raw"] == torn


def test_a_json_export_broken_midway_keeps_the_rest_in_its_dead_letter(tmp_path: Path) -> None:
    source = tmp_path / "export.json"
    good = '{"EventID": 4625, "Channel": "Security", "Computer": "ws1",\n "TimeCreated": "2026-11-20T08:15:42Z"}'
    source.write_text(good + '\n{"EventID": 4624,\n "Channel": "Security", oops}\n', encoding="utf-8")
    spool = tmp_path / "spool"
    stats = collect_paths([source], spool, settings=SETTINGS)
    assert stats.dead_letters >= 1
    letter = list(dead_letters(spool))[-1]
    assert "bytes not read" in letter["reason"] and "oops" in letter["raw"]


def test_evtx_directory(tmp_path: Path, corpora: Path) -> None:
    folder = corpora / "evtx-attack-samples" / "Defense Evasion"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    spool = tmp_path / "spool"
    stats = collect_paths([folder], spool, settings=SETTINGS)
    assert stats.events > 100 and stats.dead_letters == 0
    events = events_of(spool)
    assert all(event["socflow"]["logsource"]["product"] == "windows" for event in events)
    cleared = [e for e in events if e["winlog"]["event_id"] == 104]
    assert cleared and cleared[0]["winlog"]["event_data"]["SubjectUserName"]  # UserData flattened
    assert len({e["event"]["id"] for e in events}) == len(events)
    assert collect_paths([folder], spool, settings=SETTINGS).events == 0


def _follow(paths: list[Path], spool: Path, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=collect_paths, args=(paths, spool),
                              kwargs={"settings": SETTINGS, "follow": True, "stop": stop}, daemon=True)
    thread.start()
    return thread


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_follow_rotation_and_truncation(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "app.log"
    spool = tmp_path / "spool"
    stop = threading.Event()

    def write(lines: range, path: Path = live, mode: str = "a") -> None:
        with path.open(mode) as handle:
            for number in lines:
                handle.write(f'{{"n": {number}}}\n')

    write(range(0, 10))
    thread = _follow([logs], spool, stop)
    try:
        _wait_for(lambda: len(events_of(spool)) == 10)
        # A line being written is not taken until its newline arrives.
        with live.open("a") as handle:
            handle.write('{"n": 10')
        time.sleep(0.4)
        assert len(events_of(spool)) == 10
        with live.open("a") as handle:
            handle.write("}\n")
        write(range(11, 20))
        # Rotation by rename: the old file's tail and the new file both arrive, once.
        live.rename(logs / "app.log.1")
        write(range(20, 25), logs / "app.log.1")  # written to the old inode after rename
        write(range(25, 30), mode="w")
        _wait_for(lambda: len(events_of(spool)) == 30)
        # copytruncate: same inode, shorter file.
        time.sleep(0.3)
        write(range(30, 32), mode="w")
        _wait_for(lambda: len(events_of(spool)) == 32)
    finally:
        stop.set()
        thread.join(10)
    numbers = sorted(event["n"] for event in events_of(spool))
    assert numbers == list(range(32))
    assert len({event["event"]["id"] for event in events_of(spool)}) == 32


def test_rotation_while_stopped_reads_old_tail_first(tmp_path: Path) -> None:
    live = tmp_path / "app.log"
    spool = tmp_path / "spool"
    live.write_text("".join(f'{{"n": {n}}}\n' for n in range(5)))
    assert collect_paths([live], spool, settings=SETTINGS).events == 5
    with live.open("a") as handle:
        handle.write('{"n": 5}\n{"n": 6}\n')
    live.rename(tmp_path / "app.log.1")
    live.write_text('{"n": 7}\n')
    assert collect_paths([live], spool, settings=SETTINGS).events == 3
    assert sorted(e["n"] for e in events_of(spool)) == list(range(8))


def test_inode_reuse_is_not_mistaken_for_the_old_file(tmp_path: Path) -> None:
    live = tmp_path / "app.log"
    spool = tmp_path / "spool"
    live.write_text('{"n": 0}\n{"n": 1}\n')
    collect_paths([live], spool, settings=SETTINGS)
    live.unlink()
    live.write_text('{"other": 0}\n')  # may well get the same inode back
    assert collect_paths([live], spool, settings=SETTINGS).events == 1
    ids = [event["event"]["id"] for event in events_of(spool)]
    assert len(set(ids)) == 3  # the new file's first line is not mistaken for the old one's


def test_cli_files(tmp_path: Path, repo_root: Path) -> None:
    source = tmp_path / "x.jsonl"
    shutil.copy(DATA / "ecs.jsonl", source)
    socflow = Path(sys.executable).with_name("socflow")
    result = subprocess.run([str(socflow), "--data-dir", str(tmp_path / "data"), "collect", "files", str(source),
                             "--writer-id", "cli"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SOCFLOW_COLLECTOR__METRICS_PORT": "0"}, check=False)
    assert result.returncode == 0, result.stderr
    assert '"events": 4' in result.stdout
    assert len(events_of(tmp_path / "data" / "spool")) == 4


def test_a_writer_id_runs_once(tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text('{"n": 1}\n')
    socflow = str(Path(sys.executable).with_name("socflow"))
    command = [socflow, "--data-dir", str(tmp_path / "data"), "collect", "files", str(source), "--follow",
               "--no-progress"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "data" / "spool" / "segments").glob("seg-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run([*command[:-2], "--no-progress"], capture_output=True, text=True, timeout=60,
                                check=False)
        assert second.returncode == 2
        assert "in use by another collector" in second.stderr
    finally:
        first.terminate()
        first.wait(30)
