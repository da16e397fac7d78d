"""Spool lines decode exactly: the fast JSON decoder must not change a value on the way."""

from __future__ import annotations

import json
from typing import Any

from detectors.model import RuleInfo
from detectors.pipeline import BatchProcessor


class Recorder:
    """A matcher that keeps the events it is given and matches nothing."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def match(self, event: dict[str, Any]) -> list[RuleInfo]:
        self.events.append(event)
        return []


def test_integers_beyond_64_bits_stay_integers() -> None:
    # The collector writes them exactly (json module); orjson alone would read them back as floats.
    events = [{"winlog": {"event_data": {"Id": 2**70, "Max": 2**64 - 1, "Small": -12, "Text": "1" * 25}}}]
    recorder = Recorder()
    result = BatchProcessor(recorder).process_line(json.dumps(events))
    assert result.events == 1 and not result.dead_letters
    assert recorder.events == events
    assert isinstance(recorder.events[0]["winlog"]["event_data"]["Id"], int)


def test_nan_and_plain_lines_decode_as_before() -> None:
    recorder = Recorder()
    processor = BatchProcessor(recorder)
    processor.process_line('[{"v": NaN}, {"v": 1.5, "w": "x"}]')
    processor.process_line('{"single": true}')
    assert recorder.events[1:] == [{"v": 1.5, "w": "x"}, {"single": True}]
    assert recorder.events[0]["v"] != recorder.events[0]["v"]  # NaN


def test_a_line_that_is_not_json_is_a_dead_letter() -> None:
    result = BatchProcessor(Recorder()).process_line('[{"cut": ')
    assert result.events == 0
    assert [letter["reason"].startswith("spool record is not JSON") for letter in result.dead_letters] == [True]


def test_a_line_nested_too_deep_is_a_dead_letter() -> None:
    result = BatchProcessor(Recorder()).process_line("[" * 200_000 + "]" * 200_000)
    assert result.events == 0
    assert [letter["reason"].startswith("spool record is not JSON") for letter in result.dead_letters] == [True]


def test_the_job_hands_lines_over_as_utf8_bytes() -> None:
    # The Flink job's batch operator gets each spool line as bytes (BATCH_ROW): same events, and
    # a line that is not JSON is dead-lettered as text.
    events = [{"user": {"name": "Nguyễn Văn A"}, "n": 2**70}]
    recorder = Recorder()
    result = BatchProcessor(recorder).process_line(json.dumps(events, ensure_ascii=False).encode("utf-8"))
    assert result.events == 1 and recorder.events == events
    letters = BatchProcessor(Recorder()).process_line('[{"cut": "Văn'.encode()).dead_letters
    assert [letter["raw"] for letter in letters] == ['[{"cut": "Văn']
