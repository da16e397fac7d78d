"""A hunt: Sigma rules (single-event and correlation) over the events of a time range.

The rules load as for ``socflow replay`` (a bad rule is reported, never fatal), candidates
come from the event store oldest first (:mod:`alerts.hunt.select`, :mod:`alerts.hunt.store`),
and the detection core is ``alerts.commands.replay.detect``, the function replay itself runs:
same matching, correlations, suppressions and grouping, so the same alert documents.

Anomaly detectors (``detectors=True``) need every event, not only those the rules' logsources
select: they widen the query to the whole time range. Without them, the rules' literals on
indexed keyword fields narrow it further where that is exact (:mod:`alerts.hunt.pushdown`).

The first page goes to the engine as soon as it arrives: the days come from the index names
and the candidates are counted on a thread of their own (for the progress bar).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.commands.replay import ReplayResult, detect, load_rules
from alerts.eventstore.template import KEYWORDS
from alerts.hunt.pushdown import rule_restrictions
from alerts.hunt.select import candidate_query, rule_logsources, time_range
from alerts.hunt.store import PageStats, events_alias, read_pages, require_store, store_days
from alerts.settings import REPO_ROOT, Settings
from detectors.model import Detection
from detectors.pipeline import BatchResult
from detectors.sigma.fieldmap import FieldMappings
from ingest.logs import log_event
from ingest.logsource import LogsourceTable

LOGGER = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (events scanned so far in this batch, detections in it)


@dataclass
class HuntResult:
    """What a hunt produced: the replay result, plus how the store was read."""

    result: ReplayResult
    candidates: int = 0  # events the pre-selection query selects (-1: the count failed)
    pages: int = 0
    matches: int = 0  # rule matches (detections before grouping into alerts)
    query: dict[str, Any] = field(default_factory=dict)
    first_detection_s: float | None = None  # from the start of the read to the first match
    seconds: float = 0.0


def hunt(client: Elasticsearch, settings: Settings, rule_paths: Sequence[Path], start: datetime | None,
         end: datetime | None, *, detectors: bool = False, page_size: int = 5000, workers: int = 2,
         on_total: Callable[[int], None] | None = None, on_batch: Progress | None = None,
         on_match: Callable[[Detection, float], None] | None = None,
         clock: Callable[[], float] = time.monotonic) -> HuntResult:
    """Run the rules over stored events in ``[start, end]``; see the module docstring.

    ``on_total`` is called once with the number of candidates, from another thread, whenever
    the count comes back (the hunt does not wait for it). ``on_match`` sees each rule match as
    its page is matched, with the seconds since the start (before suppressions and grouping;
    correlations close later, so they come only in the result)."""
    alias = events_alias(settings)
    require_store(client, alias)
    from detectors.ruleset import sources_version

    engine, report = load_rules(rule_paths)
    if detectors:
        query: dict[str, Any] = {"bool": {"filter": [time_range(start, end)]}}
    else:
        table = LogsourceTable.load(REPO_ROOT / "config" / "logsources.yaml")
        restrictions = rule_restrictions(engine.loaded_rules(), FieldMappings.load(REPO_ROOT / "config" / "sigma"),
                                         KEYWORDS)
        query = candidate_query(rule_logsources(engine.rules), table, start, end, restrictions)
    outcome = HuntResult(result=ReplayResult(), query=query)
    began = clock()
    counter = threading.Thread(target=_count, args=(client, alias, query, outcome, on_total),
                               name="hunt-count", daemon=True)
    counter.start()
    slices = store_days(client, alias, query, start, end)
    stats = PageStats()

    def seen(batch: BatchResult) -> None:
        if batch.detections and outcome.first_detection_s is None:
            outcome.first_detection_s = clock() - began
        outcome.matches += len(batch.detections)
        if on_match is not None:
            for detection in batch.detections:
                on_match(detection, clock() - began)
        if on_batch is not None:
            on_batch(batch.events, len(batch.detections))

    pages: Generator[list[dict[str, Any]], None, None] = read_pages(
        client, alias, query, page_size=page_size, slices=slices, workers=workers, stats=stats)
    with closing(pages):
        result = detect(engine, pages, settings, detectors=detectors, on_batch=seen,
                        ruleset_version=sources_version(list(rule_paths)))
    result.rules_loaded, result.rule_failures = report.loaded, list(report.failures)
    if outcome.first_detection_s is None and result.detections:  # correlations close at the end
        outcome.first_detection_s = clock() - began
    outcome.result, outcome.pages, outcome.seconds = result, stats.pages, clock() - began
    counter.join()
    return outcome


def _count(client: Elasticsearch, alias: str, query: dict[str, Any], outcome: HuntResult,
           on_total: Callable[[int], None] | None) -> None:
    """The number of candidates (progress only: a failure leaves -1, the hunt goes on)."""
    try:
        # A long query over every daily index can take a while on a busy cluster: it runs
        # alongside the hunt, which does not wait for it until the end.
        counted = client.options(request_timeout=300).count(index=alias, query=query)
        outcome.candidates = int(counted["count"])
    except (ApiError, TransportError) as error:
        outcome.candidates = -1
        log_event(LOGGER, "hunt_count_failed", logging.WARNING, error=repr(error))
        return
    if on_total is not None:
        on_total(outcome.candidates)
