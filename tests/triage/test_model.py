"""The pure triage core: transitions, validation, incidents' deadlines, queue queries, risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.model import risk_score, to_document
from alerts.triage import model
from alerts.triage.errors import TriageError
from alerts.triage.queue import ROW_SOURCE, QueueFilter, build_query, decode_cursor, encode_cursor, search_body
from alerts.triage.settings import REGULATION_REPORTING_HOURS, TriageSettings
from alerts.triage.store import Record, alert_summary
from tests.triage.alertdata import detections

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_every_transition() -> None:
    allowed = {(a, b) for a, targets in model.TRANSITIONS.items() for b in targets}
    assert allowed == {("open", "acknowledged"), ("open", "investigating"), ("open", "closed"),
                       ("acknowledged", "investigating"), ("acknowledged", "closed"), ("investigating", "closed"),
                       ("closed", "open")}
    for start in model.STATUSES:
        for target in model.STATUSES:
            state = model.Triage(status=start)
            if (start, target) in allowed:
                moved = model.transition(state, target, actor="lan", now=NOW, verdict="benign", reason="ok")
                assert moved.status == target and moved.history[-1]["by"] == "lan"
            else:
                with pytest.raises(TriageError):
                    model.transition(state, target, actor="lan", now=NOW, verdict="benign", reason="ok")


def test_actions_validate_their_input() -> None:
    state = model.Triage()
    with pytest.raises(TriageError):
        model.assign(state, "<script>", actor="lan", now=NOW)
    with pytest.raises(TriageError):
        model.comment(state, " ", actor="lan", now=NOW)
    with pytest.raises(TriageError):
        model.comment(state, "x" * (model.MAX_COMMENT + 1), actor="lan", now=NOW)
    with pytest.raises(TriageError):
        model.transition(state, "closed", actor="lan", now=NOW, verdict="maybe", reason="r")
    assigned = model.assign(state, "binh", actor="lan", now=NOW)
    with pytest.raises(TriageError, match="already assigned"):
        model.assign(assigned, "binh", actor="lan", now=NOW)
    assert model.assign(assigned, None, actor="lan", now=NOW).assignee is None


def test_triage_round_trips_through_a_document() -> None:
    state = model.comment(model.assign(model.Triage(), "binh", actor="lan", now=NOW), "hi", actor="lan", now=NOW)
    source = {"socflow": state.fields()["socflow"]}
    assert model.Triage.from_source(source) == state
    assert state.summary()["comments"] == 1 and state.summary()["last_comment"]["text"] == "hi"


def test_first_response_is_stamped_once_when_an_alert_leaves_open() -> None:
    raised = {"@timestamp": "2026-11-21T11:00:00.000Z"}
    later = NOW + timedelta(hours=3)
    for first in ("acknowledged", "investigating", "closed"):
        state = model.Triage.from_source(raised)
        moved = model.transition(state, first, actor="lan", now=NOW, verdict="benign", reason="ok")
        assert (moved.acknowledged_at, moved.acknowledged_by, moved.ack_seconds) == (
            "2026-11-21T12:00:00.000Z", "lan", 3600)
        assert moved.fields()["socflow"]["triage"]["ack_seconds"] == 3600
        assert "raised_at" not in moved.fields()["socflow"]["triage"]
    # Later transitions, and a reopened alert acknowledged again, keep the first response.
    state = model.transition(model.Triage.from_source(raised), "acknowledged", actor="lan", now=NOW)
    state = model.transition(state, "investigating", actor="binh", now=later)
    state = model.transition(state, "closed", actor="binh", now=later, verdict="benign", reason="ok")
    state = model.transition(state, "open", actor="binh", now=later)
    state = model.transition(state, "acknowledged", actor="binh", now=later + timedelta(hours=1))
    assert (state.acknowledged_at, state.acknowledged_by, state.ack_seconds) == ("2026-11-21T12:00:00.000Z", "lan",
                                                                              3600)
    # Escalating into an incident is a first response too; assigning or commenting is not.
    touched = model.comment(model.assign(model.Triage.from_source(raised), "binh", actor="lan", now=NOW), "hi",
                            actor="lan", now=NOW)
    assert touched.acknowledged_at is None
    linked = model.link_incident(touched, "INC-1", actor="lan", now=later)
    assert (linked.status, linked.ack_seconds) == ("investigating", 4 * 3600)
    # An alert time ahead of the console's clock gives 0, not a negative duration; none gives none.
    ahead = model.Triage.from_source({"@timestamp": "2026-11-21T12:00:30.000Z"})
    assert model.transition(ahead, "acknowledged", actor="lan", now=NOW).ack_seconds == 0
    assert model.transition(model.Triage(), "acknowledged", actor="lan", now=NOW).ack_seconds is None


def test_reporting_deadline_defaults_to_the_circular() -> None:
    assert REGULATION_REPORTING_HOURS == 120
    assert TriageSettings().reporting_deadline_h == 120
    incident = {"detected_at": "2026-11-20T10:00:00.000Z", "reported_at": None}
    state = model.deadline(incident, hours=120, now=NOW)
    assert state.deadline == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert model.describe_left(state.left) == "3 d 22 h left"
    late = model.deadline(incident, hours=24, now=NOW)
    assert late.overdue and model.describe_left(late.left) == "2 h 0 min overdue"
    assert model.describe_left(timedelta(minutes=5)) == "5 min left"


def test_incident_severity_and_members() -> None:
    alerts = [{"_id": "a", "rule": {"level": "low"}, "socflow": {"node": {"id": "n1", "agency": "g1"},
                                                                   "alert": {"first_seen": "2026-11-20T09:00:00Z"}}},
              {"_id": "b", "rule": {"level": "high"}, "socflow": {"node": {"id": "n1", "agency": "g1"},
                                                                    "alert": {"first_seen": "2026-11-20T08:00:00Z"}}}]
    assert model.severity_of(["low", "high"]) == "high" and model.severity_of(["informational"]) == "low"
    incident = model.new_incident("i1", title="t", severity="high", alerts=alerts, actor="lan", now=NOW)
    assert (incident["alerts"], incident["nodes"], incident["agencies"]) == (["a", "b"], ["n1"], ["g1"])
    assert incident["detected_at"] == "2026-11-20T08:00:00Z"
    with pytest.raises(TriageError, match="already part"):
        model.add_alerts(incident, alerts[:1], actor="lan", now=NOW)
    with pytest.raises(TriageError, match="nothing to change"):
        model.update_incident(incident, actor="lan", now=NOW, status="open")


def test_queue_filter_round_trips_through_parameters() -> None:
    queue = QueueFilter(status=("open", "acknowledged"), level=("high",), security_level=(4, 5), assignee=("-",),
                        text="a,b", order="risk", since="24h")
    params = {name: [value] for name, value in queue.to_params().items()}
    again = QueueFilter.from_params(params)
    assert again.status == queue.status and again.security_level == (4, 5) and again.order == "risk"
    with pytest.raises(TriageError):
        QueueFilter.from_params({"security_level": ["high"]})
    with pytest.raises(TriageError):
        build_query(QueueFilter(since="yesterday"), NOW)


def test_cursor_is_checked() -> None:
    cursor = encode_cursor([1732000000000, "abc"])
    assert decode_cursor(cursor, "newest") == [1732000000000, "abc"]
    for forged in ("!!", encode_cursor([1]), encode_cursor([{"script": 1}, "x"]), encode_cursor([True, "x"])):
        with pytest.raises(TriageError):
            decode_cursor(forged, "newest")
    with pytest.raises(TriageError):
        search_body(QueueFilter(), NOW, size=10_000)
    assert "from" not in search_body(QueueFilter(), NOW, size=50, after=cursor)


def test_risk_score() -> None:
    assert risk_score("critical", {"security_level": 5, "kind": "data-center"}) == 30
    assert risk_score("low", {"security_level": 1}) == 2
    assert risk_score("high", None) == 12  # unknown node: level 3
    assert risk_score("medium", {"security_level": "x"}) == 9


def _only(source: dict[str, Any], paths: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """``source`` cut to ``paths`` the way Elasticsearch's ``_source.includes`` cuts it."""
    kept: dict[str, Any] = {}
    for key, value in source.items():
        path = f"{prefix}{key}"
        if any(path == wanted or path.startswith(wanted + ".") for wanted in paths):
            kept[key] = value
        elif (isinstance(value, dict) and any(wanted.startswith(path + ".") for wanted in paths)
              and (inner := _only(value, paths, path + "."))):
            kept[key] = inner
    return kept


def test_a_queue_page_reads_every_field_its_rows_show() -> None:
    """The queue asks Elasticsearch for ``ROW_SOURCE`` only: a row made from that cut is the row
    made from the whole alert, triaged and in an incident."""
    for _label, detection in detections(8):
        document = to_document(detection)
        state = model.transition(model.Triage.from_source(document), "acknowledged", actor="lan", now=NOW)
        state = model.comment(state, "seen", actor="lan", now=NOW)
        document["socflow"]["alert"].update(state.fields()["socflow"]["alert"])
        document["socflow"]["triage"] = {**state.fields()["socflow"]["triage"], "incident": "INC-1",
                                         "verdict": "true_positive"}
        record = Record("id-1", "alerts-2026.11", 3, 1, document)
        cut = Record("id-1", "alerts-2026.11", 3, 1, _only(document, ROW_SOURCE))
        assert alert_summary(cut) == alert_summary(record)
        assert "events" not in cut.source and "comments" not in cut.source["socflow"]["triage"]
    assert search_body(QueueFilter(), NOW, size=50)["_source"] == {"includes": list(ROW_SOURCE)}
