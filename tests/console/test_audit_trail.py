"""The audit trail on the real Elasticsearch: appends chain, ``socflow audit verify`` finds damage.

Each test writes a short chain to its own index, damages it the way someone with write access
to the index could (edit a document, delete one, swap two), and runs the CLI as an operator
would, checking its exit code and the record it names.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.audit.chain import Head
from alerts.audit.trail import AuditTrail
from alerts.cli import main

NOW = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def es(elasticsearch_url: str) -> Elasticsearch:
    return Elasticsearch(elasticsearch_url)


@pytest.fixture
def trail(es: Elasticsearch, tmp_path: Path) -> Iterator[AuditTrail]:
    index = f"t-console-audit-{uuid.uuid4().hex[:12]}"
    yield AuditTrail(es, index, tmp_path / "data" / "audit" / "chain-head")
    es.indices.delete(index=index, ignore_unavailable=True)


def _fill(trail: AuditTrail, n: int) -> list[dict]:
    return [trail.append(actor="ann", action="alert_ack", target=f"alert:a{i}", before={"status": "open"},
                         after={"status": "acknowledged", "note": "<script>alert(1)</script> \u202egpj.exe"},
                         now=NOW + timedelta(seconds=i), source_ip="10.0.0.7") for i in range(n)]


def _verify(trail: AuditTrail, tmp_path: Path, elasticsearch_url: str, capsys: pytest.CaptureFixture[str]
            ) -> tuple[int, str]:
    """``socflow --data-dir D audit verify --index I`` as an operator runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
        code = main(["--data-dir", str(tmp_path / "data"), "audit", "verify", "--index", trail.index])
    return code, capsys.readouterr().out


def test_append_chains_and_mirrors_the_head(trail: AuditTrail, es: Elasticsearch) -> None:
    records = _fill(trail, 3)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert Head.from_json(trail.head_file.read_text()) == Head(3, records[2]["hash"])
    stored = es.get(index=trail.index, id="2")["_source"]
    assert stored == records[1]
    assert trail.verify().ok


def test_untouched_trail_verifies(trail: AuditTrail, tmp_path: Path, elasticsearch_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail, 5)
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 0, out
    assert "intact: 5 records, last seq 5" in out


def test_edited_record_fails(trail: AuditTrail, es: Elasticsearch, tmp_path: Path, elasticsearch_url: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail, 5)
    es.update(index=trail.index, id="3", doc={"actor": "mallory"}, refresh=True)
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 1
    assert "BROKEN at record seq=3" in out and "record changed" in out


def test_deleted_record_fails(trail: AuditTrail, es: Elasticsearch, tmp_path: Path, elasticsearch_url: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail, 5)
    es.delete(index=trail.index, id="2", refresh=True)
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 1
    assert "BROKEN at record seq=2" in out and "removed" in out


def test_deleted_last_record_fails_through_the_head_file(trail: AuditTrail, es: Elasticsearch, tmp_path: Path,
                                                         elasticsearch_url: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail, 4)
    es.delete(index=trail.index, id="4", refresh=True)
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 1
    assert "seq=4" in out and "head file says seq 4" in out


def test_reordered_records_fail(trail: AuditTrail, es: Elasticsearch, tmp_path: Path, elasticsearch_url: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    records = _fill(trail, 5)
    # Swap documents 3 and 4 whole (each keeps its own content, seq and hash, under the other's _id).
    es.index(index=trail.index, id="3", document=records[3], refresh=True)
    es.index(index=trail.index, id="4", document=records[2], refresh=True)
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 1
    assert "BROKEN at record seq=3 (_id 4)" in out


def test_head_file_changed_fails(trail: AuditTrail, tmp_path: Path, elasticsearch_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail, 2)
    trail.head_file.write_text(json.dumps({"seq": 2, "hash": "0" * 64}))
    code, out = _verify(trail, tmp_path, elasticsearch_url, capsys)
    assert code == 1 and "disagrees" in out


def test_verify_walks_past_one_page(trail: AuditTrail) -> None:
    _fill(trail, 7)
    verdict = trail.verify()
    assert verdict.ok
    pages = list(trail.records(page=3))
    assert [int(doc_id) for doc_id, _ in pages] == list(range(1, 8))


def test_concurrent_writers_keep_one_order(trail: AuditTrail, es: Elasticsearch) -> None:
    # A second trail object on the same index and head file stands for another process (the lock
    # file serialises them); threads of both append at once.
    other = AuditTrail(es, trail.index, trail.head_file)
    errors: list[BaseException] = []

    def write(which: AuditTrail, tag: str) -> None:
        try:
            for i in range(10):
                which.append(actor=tag, action="test", target=f"{tag}{i}", now=NOW)
        except Exception as error:  # noqa: BLE001 - reported below, whatever it is
            errors.append(error)

    threads = [threading.Thread(target=write, args=(t, f"w{n}")) for n, t in enumerate((trail, other, trail, other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    verdict = trail.verify()
    assert verdict.ok, verdict.problem
    assert verdict.records == 40


def test_head_file_lost_resyncs_from_the_index(trail: AuditTrail) -> None:
    _fill(trail, 3)
    trail.head_file.unlink()
    record = trail.append(actor="ann", action="test", target="x", now=NOW)
    assert record["seq"] == 4
    assert trail.verify().ok


def test_search_filters_and_pages_newest_first(trail: AuditTrail, es: Elasticsearch) -> None:
    from alerts.audit.query import AuditFilter, actions, search

    _fill(trail, 5)
    trail.append(actor="bob", action="login_failure", target="user:bob", now=NOW + timedelta(hours=1))
    trail.append(actor="bob", action="login_success", target="user:bob", now=NOW + timedelta(hours=2))
    first = search(es, trail.index, AuditFilter(), size=3)
    assert first.total == 7 and [r["seq"] for r in first.records] == [7, 6, 5] and first.next_before == 5
    second = search(es, trail.index, AuditFilter(), before=first.next_before, size=3)
    assert [r["seq"] for r in second.records] == [4, 3, 2]
    assert [r["seq"] for r in search(es, trail.index, AuditFilter(actor="bob")).records] == [7, 6]
    assert [r["action"] for r in search(es, trail.index, AuditFilter(action="login")).records] == [
        "login_success", "login_failure"]  # a prefix finds the family
    window = AuditFilter(since=NOW + timedelta(seconds=2), until=NOW + timedelta(minutes=90))
    assert [r["seq"] for r in search(es, trail.index, window).records] == [6, 5, 4, 3]
    assert actions(es, trail.index) == ["alert_ack", "login_failure", "login_success"]
    assert search(es, "t-console-audit-missing", AuditFilter()).total == 0
