"""Grouping detections into alerts, and suppressions: order-independent, idempotent, counted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from detectors.dedup import AlertState, Deduplicator, DedupPolicy, Suppressor, step
from detectors.errors import DetectorError
from detectors.model import Detection, RuleInfo

RULE = RuleInfo(id="r1", title="Rule one", level="high")


def _detection(second: int, source: str = "198.51.100.23", minute: int = 0, hour: int = 9) -> Detection:
    event = {"@timestamp": f"2026-11-20T{hour:02d}:{minute:02d}:{second:02d}.000Z",
             "event": {"id": f"e-{hour}-{minute}-{second}-{source}"}, "source": {"ip": source}}
    return Detection.for_events(RULE, [event])


def test_one_alert_per_rule_entity_and_window() -> None:
    grouping = Deduplicator(DedupPolicy(window_s=3600))
    for second in range(5):
        grouping.add(_detection(second))
    grouping.add(_detection(0, source="192.0.2.7"))
    grouping.add(_detection(0, hour=10))  # next window
    alerts = grouping.alerts()
    assert sorted(a.count for a in alerts) == [1, 1, 5]
    storm = next(a for a in alerts if a.count == 5)
    assert (storm.first_seen, storm.timestamp) == ("2026-11-20T09:00:00.000Z", "2026-11-20T09:00:04.000Z")
    assert len(storm.event_ids) == 5


def test_alert_does_not_depend_on_arrival_order() -> None:
    detections = [_detection(second) for second in range(4)]
    results = set()
    for order in itertools.permutations(detections):
        grouping = Deduplicator(DedupPolicy())
        for detection in order:
            grouping.add(detection)
        (alert,) = grouping.alerts()
        results.add((alert.id, alert.count, alert.first_seen, alert.timestamp, alert.event_ids,
                     tuple(e["event"]["id"] for e in alert.events)))
    assert len(results) == 1


def test_replayed_detection_is_not_counted_twice_and_state_round_trips() -> None:
    policy = DedupPolicy()
    first = _detection(1)
    _key, alert_id, _start = policy.key(first)
    state, alert = step(None, first, alert_id)
    assert alert is not None and alert.count == 1
    restored = AlertState.from_snapshot(state.to_snapshot())
    state, again = step(restored, first, alert_id)
    assert again is None and state.count == 1
    state, second = step(state, _detection(2), alert_id)
    assert second is not None and second.count == 2 and second.id == alert_id
    with pytest.raises(DetectorError, match="snapshot version"):
        AlertState.from_snapshot({**state.to_snapshot(), "v": 99})


def test_many_events_keep_the_first_and_last_ones() -> None:
    grouping = Deduplicator(DedupPolicy())
    for minute in range(30):
        grouping.add(_detection(0, minute=minute))
    (alert,) = grouping.alerts()
    minutes = [int(e["@timestamp"][14:16]) for e in alert.events]
    assert alert.count == 30 and minutes == [0, 1, 2, 3, 4, 25, 26, 27, 28, 29]


def test_suppressions_apply_until_expiry_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text(
        "suppressions:\n"
        "  - name: pentest\n    reason: commissioned test\n    rule: r1\n"
        "    fields: {source.ip: 198.51.100.23}\n    until: 2026-11-20T09:30:00Z\n", encoding="utf-8")
    suppressor = Suppressor.load(path)
    assert suppressor.suppressed_by(_detection(1)) == "pentest"
    assert suppressor.suppressed_by(_detection(1, source="192.0.2.7")) is None
    assert suppressor.suppressed_by(_detection(1, minute=45)) is None  # expired
    assert suppressor.counts == {"pentest": 1}


def test_invalid_suppressions_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.yaml"
    path.write_text("suppressions:\n  - name: no-reason\n    until: 2026-12-01T00:00:00Z\n", encoding="utf-8")
    with pytest.raises(DetectorError, match="invalid suppressions"):
        Suppressor.load(path)


def test_suppressions_of_several_files_and_old_job_specs(tmp_path: Path) -> None:
    """The job merges config/suppressions.yaml with the console's file; a name used in both is an
    error; a job spec written with the single ``suppressions_path`` still loads."""
    import json

    from detectors.errors import DetectorError
    from detectors.flink.job import JobSpec

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    entry = "  - {name: %s, reason: r, rule: x, until: 2030-01-01T00:00:00Z}\n"
    first.write_text("suppressions:\n" + entry % "one", encoding="utf-8")
    second.write_text("suppressions:\n" + entry % "two", encoding="utf-8")
    merged = Suppressor.load_all([first, second, tmp_path / "absent.yaml"])
    assert [s.name for s in merged.suppressions] == ["one", "two"]
    second.write_text("suppressions:\n" + entry % "one", encoding="utf-8")
    with pytest.raises(DetectorError, match="used twice"):
        Suppressor.load_all([first, second])
    base = {"spool_dir": "s", "alert_stream_dir": "a", "deadletter_dir": "d", "checkpoint_dir": "c",
            "rule_dirs": ["r"], "config_dir": "c"}
    assert JobSpec.from_json(json.dumps({**base, "suppressions_path": "x.yaml"})).suppressions_paths == ("x.yaml",)
    assert JobSpec.from_json(json.dumps(base)).suppressions_paths == ()


def test_suppressions_reload_when_a_file_changes(tmp_path: Path) -> None:
    """The running job's suppressions: a file changed (the console added one) is loaded again at
    the next look (every interval of the clock passed in); a broken file keeps the last good set."""
    import os

    from detectors.dedup import ReloadingSuppressor

    config, console = tmp_path / "config.yaml", tmp_path / "console.yaml"
    entry = "  - {name: %s, reason: r, rule: %s, until: 2030-01-01T00:00:00Z}\n"
    config.write_text("suppressions:\n" + entry % ("reviewed", "r-a"), encoding="utf-8")
    reloading = ReloadingSuppressor([config, console], interval_s=10)
    rule = RuleInfo(id="r-b", title="b")
    detection = Detection.for_events(rule, [{"@timestamp": "2026-11-20T10:00:00Z", "event": {"id": "e"}}])
    assert reloading.suppressor.suppressed_by(detection) is None
    console.write_text("suppressions:\n" + entry % ("console-1", "r-b"), encoding="utf-8")
    assert reloading.refresh(100.0) is True
    assert reloading.suppressor.suppressed_by(detection) == "console-1"
    console.write_text("suppressions:\n" + entry % ("console-1", "r-b") + entry % ("console-2", "r-c"),
                       encoding="utf-8")
    assert reloading.refresh(105.0) is False  # not looked at again within 10 s
    assert reloading.refresh(111.0) is True and len(reloading.suppressor.suppressions) == 3
    assert reloading.suppressor.counts == {"console-1": 1}  # counts carry over
    console.write_text("suppressions: [", encoding="utf-8")
    os.utime(console, ns=(1, 1))
    assert reloading.refresh(200.0) is False and reloading.last_error
    assert reloading.suppressor.suppressed_by(detection) == "console-1"  # the last good set stays
    assert reloading.refresh(300.0) is False  # the same broken file is not read again
