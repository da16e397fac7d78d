"""The indexer: alert-stream files in, Elasticsearch documents out, idempotently.

The Flink job commits alert-stream part files on each checkpoint (in-progress files are
hidden, their names start with "."). The indexer reads finished files in order and records its
position (file, line) only after Elasticsearch acknowledged every document up to it. Each
alert (its id is the document ``_id``) carries a version, how many detections it has absorbed
(see detectors.dedup); per bulk the indexer reads the stored documents, then writes:

- nothing when Elasticsearch already has that version or a newer one (counted as already
  present): a replay, a retry or a second run never makes a duplicate, and an older version
  never replaces a newer;
- otherwise the new version, keeping what analysts wrote into the stored one: the triage
  fields ``socflow.alert.status`` and ``socflow.alert.assignee`` and anything under
  ``socflow.triage`` (writing the new version as it comes would wipe an analyst's work
  whenever the alert counted one more event). The write is conditional on the stored
  document's sequence number (or on its absence): if an analyst or another indexer changed it
  meanwhile, Elasticsearch answers 409 and the document is read and merged again;
- 429 and 5xx item errors and connection failures are retried with exponential back-off;
  after ``max_retries`` the run stops with an error and the position stays where it was, so
  the next run resumes there (nothing is lost);
- a document Elasticsearch rejects for good (mapping conflict) goes to the indexer's
  dead-letter file with the reason, and the position moves on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from alerts.errors import IndexingError
from alerts.model import NodeOfGroup, index_name, to_document
from alerts.retrying import RETRYABLE_STATUS, backoff, call_with_retries
from alerts.settings import ElasticsearchSettings, IndexerSettings
from detectors.model import Detection
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
TEMPLATE_PATH = Path(__file__).with_name("templates") / "socflow-alerts.json"


def connect(settings: ElasticsearchSettings) -> Elasticsearch:
    """An Elasticsearch client from settings (API key preferred over basic auth)."""
    options: dict[str, Any] = {"request_timeout": settings.request_timeout_s}
    if settings.api_key is not None:
        options["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password is not None:
        options["basic_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.ca_certs:
        options["ca_certs"] = str(settings.ca_certs)
    return Elasticsearch(settings.url, **options)


def install_template(client: Elasticsearch, prefix: str) -> None:
    """Create or update the index template that maps ``<prefix>-*`` and joins the alias."""
    body = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8").replace("__PREFIX__", prefix))
    client.indices.put_index_template(name=prefix, **body)
    # Indices made before a field joined the template would map it dynamically on its first write
    # (a date as keyword: date detection is off); give them the triage fields' mapping now.
    triage = body["template"]["mappings"]["properties"]["socflow"]["properties"]["triage"]
    try:
        client.indices.put_mapping(index=f"{prefix}-*", allow_no_indices=True,
                                   properties={"socflow": {"properties": {"triage": triage}}})
    except ApiError as error:  # a field already mapped otherwise: say so, the template holds for new indices
        log_event(LOGGER, "alert_mapping_not_updated", logging.WARNING, prefix=prefix, error=str(error)[:300])


@dataclass
class IndexStats:
    """What one indexing run did."""

    indexed: int = 0
    already_present: int = 0
    rejected: int = 0
    retries: int = 0
    files_done: int = 0
    backlog_files: int = 0
    superseded: int = 0  # older versions of an alert dropped because a newer one was in the same bulk


@dataclass
class Position:
    """Lines of each alert-stream file already acknowledged by Elasticsearch."""

    lines: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> Position:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(lines=dict(data.get("lines", {})), done=set(data.get("done", [])))

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump({"lines": self.lines, "done": sorted(self.done)}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def _version(action: dict[str, Any]) -> int:
    return int(action["_source"]["socflow"]["alert"]["version"])


TRIAGE_FIELDS = ("status", "assignee")  # of socflow.alert; socflow.triage is kept whole


def _stored_version(stored: dict[str, Any]) -> int:
    try:
        return int(stored["_source"]["socflow"]["alert"]["version"])
    except (KeyError, TypeError, ValueError):
        return 0


def _operation(action: dict[str, Any], stored: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Bulk header and body writing ``action`` over ``stored`` (None: no document yet), the
    stored triage carried over, conditional on the stored document being unchanged."""
    header: dict[str, Any] = {"_index": action["_index"], "_id": action["_id"]}
    source = action["_source"]
    if stored is None:
        return [{"create": header}, source]
    kept = stored.get("_source", {}).get("socflow") or {}
    alert = kept.get("alert") or {}
    triage = {name: alert[name] for name in TRIAGE_FIELDS if name in alert}
    if triage or "triage" in kept:
        source = {**source, "socflow": {**source["socflow"], "alert": {**source["socflow"]["alert"], **triage}}}
        if "triage" in kept:
            source["socflow"]["triage"] = kept["triage"]
    header.update(if_seq_no=stored["_seq_no"], if_primary_term=stored["_primary_term"])
    return [{"index": header}, source]


def finished_files(stream_dir: Path) -> list[Path]:
    """Committed alert-stream files, oldest first (Flink hides in-progress ones behind '.')."""
    if not stream_dir.is_dir():
        return []
    files = [p for p in stream_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


class Indexer:
    """Moves alert-stream records into Elasticsearch; see the module docstring."""

    def __init__(
        self,
        client: Elasticsearch,
        stream_dir: Path,
        state_dir: Path,
        es_settings: ElasticsearchSettings,
        settings: IndexerSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[IndexStats], None] | None = None,
        node_of_group: NodeOfGroup | None = None,
    ) -> None:
        """``node_of_group``: names the node of detector alerts (see alerts.nodes); load it once
        per indexer, not per run."""
        self.client = client
        self.node_of_group = node_of_group
        self.stream_dir = stream_dir
        self.prefix = es_settings.index_prefix
        self.settings = settings
        self.sleep = sleep
        self.on_progress = on_progress
        state_dir.mkdir(parents=True, exist_ok=True)
        self.position_path = state_dir / "indexer-position.json"
        self.deadletter_path = state_dir / "indexer-deadletter.jsonl"
        self.position = Position.load(self.position_path)
        self._template_ready = False

    def run_once(self) -> IndexStats:
        """Index everything committed so far; raise IndexingError when ES stays unavailable."""
        stats = IndexStats()
        if not self._template_ready:
            self._call_with_retries(lambda: install_template(self.client, self.prefix), stats)
            self._template_ready = True
        pending = [p for p in finished_files(self.stream_dir) if self._key(p) not in self.position.done]
        stats.backlog_files = len(pending)
        for path in pending:
            self._index_file(path, stats)
            stats.files_done += 1
            stats.backlog_files -= 1
            if self.on_progress:
                self.on_progress(stats)
        if stats.indexed or stats.already_present:
            self.client.indices.refresh(index=self.prefix, ignore_unavailable=True)
        return stats

    def _key(self, path: Path) -> str:
        return str(path.relative_to(self.stream_dir))

    def _index_file(self, path: Path, stats: IndexStats) -> None:
        key = self._key(path)
        start = self.position.lines.get(key, 0)
        chunk: list[tuple[int, dict[str, Any]]] = []
        line_number = start
        for line_number, action in self._actions(path, start):
            chunk.append((line_number, action))
            if len(chunk) >= self.settings.bulk_size:
                self._send(chunk, stats)
                self._advance(key, line_number)
                chunk = []
        if chunk:
            self._send(chunk, stats)
        self._advance(key, line_number, done=True)

    def _advance(self, key: str, lines: int, *, done: bool = False) -> None:
        self.position.lines[key] = lines
        if done:
            self.position.done.add(key)
        self.position.save(self.position_path)

    def _actions(self, path: Path, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if number <= start or not line.strip():
                    continue
                try:
                    detection = Detection.from_record(json.loads(line))
                    action = {
                        # by first sighting: every version of the alert goes to the same index
                        "_index": index_name(self.prefix, detection.first_seen or detection.timestamp),
                        "_id": detection.id,
                        "_source": to_document(detection, self.node_of_group),
                    }
                except (ValueError, KeyError, TypeError) as error:
                    self._dead_letter(f"unreadable alert-stream record: {error!r}", f"{path}:{number}", line)
                    continue
                yield number, action

    def _send(self, chunk: Sequence[tuple[int, dict[str, Any]]], stats: IndexStats) -> None:
        # An alert's updates often follow each other closely: send only its newest version.
        newest: dict[str, dict[str, Any]] = {}
        for _, action in chunk:
            known = newest.get(action["_id"])
            if known is None or _version(action) > _version(known):
                newest[action["_id"]] = action
        stats.superseded += len(chunk) - len(newest)
        waiting = list(newest.values())
        attempt = 0
        while waiting:
            stored = self._stored(waiting, stats)
            operations: list[dict[str, Any]] = []
            writing: list[dict[str, Any]] = []
            for action in waiting:
                found = stored.get(action["_id"])
                if found is not None and _stored_version(found) >= _version(action):
                    stats.already_present += 1
                    continue
                operations.extend(_operation(action, found))
                writing.append(action)
            if not writing:
                return
            response = self._call_with_retries(partial(self.client.bulk, operations=operations), stats)
            retry: list[dict[str, Any]] = []
            for action, item in zip(writing, response["items"], strict=True):
                result = next(iter(item.values()))
                status = int(result.get("status", 500))
                if status in (200, 201):
                    stats.indexed += 1
                elif status in RETRYABLE_STATUS or status == 409:  # 409: changed since read: read again
                    retry.append(action)
                else:
                    stats.rejected += 1
                    self._dead_letter(f"rejected by Elasticsearch: {result.get('error')}", action["_id"], action)
            if retry:
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise IndexingError(f"{len(retry)} documents still refused after {attempt - 1} retries")
                stats.retries += 1
                self.sleep(self._backoff(attempt))
            waiting = retry

    def _stored(self, actions: Sequence[dict[str, Any]], stats: IndexStats) -> dict[str, dict[str, Any]]:
        """The stored documents of these alerts (with sequence numbers), by id."""
        docs = [{"_index": action["_index"], "_id": action["_id"]} for action in actions]
        response = self._call_with_retries(partial(self.client.mget, docs=docs), stats)
        found: dict[str, dict[str, Any]] = {}
        for doc in response["docs"]:
            if doc.get("found"):
                found[doc["_id"]] = doc
            elif "error" in doc and doc["error"].get("type") != "index_not_found_exception":
                raise IndexingError(f"cannot read stored alert {doc['_id']}: {doc['error']}")
        return found

    def _backoff(self, attempt: int) -> float:
        return backoff(self.settings, attempt)

    def _call_with_retries(self, call: Callable[[], Any], stats: IndexStats) -> Any:
        def counted() -> None:
            stats.retries += 1

        return call_with_retries(call, self.settings, sleep=self.sleep, on_retry=counted)

    def _dead_letter(self, reason: str, source: str, raw: object) -> None:
        record = {"reason": reason, "source": source, "stage": "index", "raw": raw}
        with self.deadletter_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        log_event(LOGGER, "alert_dead_lettered", logging.WARNING, source=source, reason=reason)
