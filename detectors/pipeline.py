"""The stateless stage: one spool record (a batch of events) in, detections and dead letters out.

This is what the Flink job's batch operator and ``socflow replay`` both run, so a rule behaves
the same in a hunt over files as in production. Every event is matched by the Sigma engine;
a rule that fires and generates alerts yields a :class:`Detection` with a deterministic id.
An event the stage cannot handle becomes a dead letter with the reason — never an exception
that would fail the Flink task, and never a silent drop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectors.model import Detection, RuleInfo
from ingest.logs import log_event
from ingest.normalize import decode_exactly
from ingest.schema import Event

LOGGER = logging.getLogger(__name__)


class Matcher(Protocol):
    """What the stage needs of a rule engine (``detectors.sigma.SigmaEngine`` is one)."""

    def match(self, event: Mapping[str, Any]) -> list[RuleInfo]: ...


# (event, matched rules) -> keyed inputs for correlations and anomaly detectors.
Router = Callable[[Event, Sequence[RuleInfo]], list[tuple[str, dict[str, Any]]]]


@dataclass
class BatchResult:
    """What one batch produced."""

    detections: list[Detection] = field(default_factory=list)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    # key -> items, grouped per batch so one keyed-state access serves many events.
    keyed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: int = 0


def dead_letter(reason: str, source: str, raw: object, stage: str = "detect") -> dict[str, str]:
    """A dead-letter record (same fields as ``ingest.spool.DeadLetter``)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return {"reason": reason, "source": source, "stage": stage, "raw": text}


class BatchProcessor:
    """Runs the rule engine (and the router, when correlations or detectors are on) per batch."""

    def __init__(self, matcher: Matcher, router: Router | None = None) -> None:
        self.matcher = matcher
        self.router = router

    def process_line(self, line: str | bytes, source: str = "spool") -> BatchResult:
        """Decode one spool line (a JSON array of events, or one event) and process it."""
        try:
            # msgspec; what it refuses (NaN, lone surrogates, too deep) goes to the json module.
            decoded = decode_exactly(line, json.loads)
        except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than json's stack
            raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            return BatchResult(dead_letters=[dead_letter(f"spool record is not JSON: {error}", source, raw)])
        batch = decoded if isinstance(decoded, list) else [decoded]
        return self.process(batch, source)

    def process(self, batch: Iterable[Any], source: str = "batch") -> BatchResult:
        result = BatchResult()
        for position, event in enumerate(batch):
            result.events += 1
            where = f"{source}#{position}"
            if not isinstance(event, dict):
                result.dead_letters.append(dead_letter("event is not a JSON object", where, event))
                continue
            try:
                matched = self.matcher.match(event)
                for rule in matched:
                    if rule.generate:
                        result.detections.append(Detection.for_events(rule, [event]))
                if self.router is not None:
                    for key, item in self.router(event, matched):
                        result.keyed.setdefault(key, []).append(item)
            except Exception as error:  # noqa: BLE001 - operator boundary: count and dead-letter
                log_event(LOGGER, "event_failed", logging.WARNING, source=where, error=repr(error))
                result.dead_letters.append(dead_letter(f"detection failed: {error!r}", where, event))
        return result
