"""The audit chain's pure logic: canonical form, linking, and each kind of damage found."""

from __future__ import annotations

import copy
from typing import Any

from alerts.audit.chain import EMPTY, GENESIS, Head, canonical, check, link, record_hash


def _chain(n: int) -> list[tuple[str, dict[str, Any]]]:
    head, records = EMPTY, []
    for i in range(n):
        record = link(head, {"actor": "ann", "action": "alert_ack", "target": f"alert:{i}",
                             "before": {"status": "open"}, "after": {"status": "acknowledged"},
                             "@timestamp": f"2027-01-01T00:00:{i:02d}.000000Z", "source_ip": None})
        head = Head(record["seq"], record["hash"])
        records.append((str(record["seq"]), record))
    return records


def _head(records: list[tuple[str, dict[str, Any]]]) -> Head:
    return Head(records[-1][1]["seq"], records[-1][1]["hash"])


def test_canonical_form_is_key_order_independent_and_excludes_the_hash() -> None:
    a = {"b": 1, "a": [1, "é"], "hash": "x"}
    b = {"a": [1, "é"], "b": 1, "hash": "y"}
    assert canonical(a) == canonical(b) == '{"a":[1,"é"],"b":1}'.encode()
    assert record_hash(a) == record_hash(b)


def test_link_numbers_and_chains() -> None:
    records = _chain(3)
    assert [r["seq"] for _, r in records] == [1, 2, 3]
    assert records[0][1]["prev_hash"] == GENESIS
    assert records[1][1]["prev_hash"] == records[0][1]["hash"]
    verdict = check(records, _head(records))
    assert verdict.ok and verdict.records == 3 and verdict.last == _head(records)


def test_empty_chain_without_head_is_fine() -> None:
    assert check([], None).ok
    assert check([], EMPTY).ok


def test_changed_record() -> None:
    records = _chain(5)
    head = _head(records)
    records[2][1]["after"]["status"] = "closed"
    verdict = check(records, head)
    assert not verdict.ok and verdict.problem is not None
    assert verdict.problem.seq == 3 and "changed" in verdict.problem.reason and verdict.records == 2


def test_changed_record_with_recomputed_hash_breaks_the_next_link() -> None:
    records = _chain(5)
    head = _head(records)
    records[2][1]["actor"] = "mallory"
    records[2][1]["hash"] = record_hash(records[2][1])
    verdict = check(records, head)
    assert verdict.problem is not None and verdict.problem.seq == 4 and "prev_hash" in verdict.problem.reason


def test_removed_record() -> None:
    records = _chain(5)
    head = _head(records)
    del records[1]
    verdict = check(records, head)
    assert verdict.problem is not None and verdict.problem.seq == 2 and "missing" in verdict.problem.reason


def test_removed_last_records_caught_by_the_head() -> None:
    records = _chain(5)
    head = _head(records)
    verdict = check(records[:3], head)
    assert verdict.problem is not None and verdict.problem.seq == 4 and "head file says seq 5" in verdict.problem.reason


def test_missing_head_file_with_records() -> None:
    verdict = check(_chain(2), None)
    assert verdict.problem is not None and "head file is missing" in verdict.problem.reason


def test_reordered_records() -> None:
    records = _chain(5)
    head = _head(records)
    # Swap the contents of _id 2 and _id 3 (what an edit of two documents would do).
    (id2, r2), (id3, r3) = records[1], records[2]
    records[1], records[2] = (id2, copy.deepcopy(r3)), (id3, copy.deepcopy(r2))
    records.sort(key=lambda pair: pair[1]["seq"])  # the index returns them by seq
    verdict = check(records, head)
    assert verdict.problem is not None and verdict.problem.seq == 2
    assert "_id '3'" in str(verdict.problem)


def test_renumbered_records() -> None:
    records = _chain(4)
    head = _head(records)
    records[1][1]["seq"], records[2][1]["seq"] = 3, 2
    records.sort(key=lambda pair: pair[1]["seq"])
    verdict = check(records, head)
    assert verdict.problem is not None and verdict.problem.seq == 2


def test_head_disagreeing_with_last_record() -> None:
    records = _chain(3)
    verdict = check(records, Head(3, "f" * 64))
    assert verdict.problem is not None and "disagrees" in verdict.problem.reason
