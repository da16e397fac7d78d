"""Reading the event store in ``@timestamp`` order: a point in time and ``search_after``.

Deep ``from`` paging costs Elasticsearch the whole prefix on every page and stops at 10,000
hits; a point in time (PIT) keeps one consistent view of the indices while ``search_after``
walks it page by page at constant cost, whatever the depth.

A hunt reads day by day (the indices are daily): a few days are fetched at once on threads,
each at most two pages ahead, and handed over in day order, so Elasticsearch works with several
threads while the caller runs the rules, and the first page is handed over as soon as it
arrives; memory stays at a few pages, however many events the range holds. Each day has its
own PIT, opened with an ``index_filter`` on the day: its searches go to that day's shard only,
instead of asking every shard of a month or a year whether it can match, page after page.
The days come from the daily indices' names (no search at all before the first page); an
alias over indices named otherwise falls back to a date histogram of the candidates.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from alerts.hunt import HuntError
from alerts.hunt.times import iso
from alerts.settings import Settings
from ingest.logs import log_event
from ingest.schema import get_field

LOGGER = logging.getLogger(__name__)
# Oldest first; event.id (the document _id, unique) breaks ties so the order is total and the
# same on every run. Elasticsearch adds _shard_doc behind them for a PIT search.
EVENT_ORDER: tuple[dict[str, Any], ...] = (
    {"@timestamp": {"order": "asc", "format": "strict_date_optional_time_nanos"}},
    {"event.id": {"order": "asc", "missing": "_last"}},
)
# Pages of a hunt: time, then the position in the PIT; ties are put in event.id order in Python.
POSITION_ORDER: tuple[dict[str, Any], ...] = (
    {"@timestamp": {"order": "asc", "format": "strict_date_optional_time_nanos"}},
    {"_shard_doc": "asc"},
)
_END = object()


def events_alias(settings: Settings) -> str:
    """The alias of the event store (``event_store.index_prefix``)."""
    return settings.event_store.index_prefix


def require_store(client: Elasticsearch, alias: str) -> None:
    """Raise a clear HuntError when the alias (or index) does not exist or cannot be reached."""
    try:
        found = client.indices.exists(index=alias)
    except (ApiError, TransportError) as error:
        raise HuntError(f"cannot reach Elasticsearch to read the event store: {error}", source=alias) from error
    if not found:
        raise HuntError("no event store: the alias does not exist (start the event writer: "
                        "`socflow index events`, or run `socflow demo`)", source=alias)


@dataclass
class PageStats:
    """What a read did: pages and events fetched."""

    pages: int = 0
    events: int = 0


def day_slices(client: Elasticsearch, alias: str, query: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """The UTC days that hold events matching ``query``: ``(start, end, count)``, end exclusive,
    oldest first (a date histogram: empty days of a long range cost nothing)."""
    try:
        response = client.search(index=alias, query=dict(query), size=0, track_total_hits=False, aggs={"days": {
            "date_histogram": {"field": "@timestamp", "calendar_interval": "1d", "min_doc_count": 1,
                               "time_zone": "UTC", "format": "strict_date_optional_time"}}})
    except (ApiError, TransportError) as error:
        raise HuntError(f"cannot count the candidate events: {error}", source=alias) from error
    buckets = ((response.get("aggregations") or {}).get("days") or {}).get("buckets") or []
    found = []
    for bucket in buckets:
        day = datetime.fromtimestamp(int(bucket["key"]) / 1000, UTC)
        found.append((iso(day), iso(day + timedelta(days=1)), int(bucket["doc_count"])))
    return found


def store_days(client: Elasticsearch, alias: str, query: Mapping[str, Any], start: datetime | None,
               end: datetime | None) -> list[tuple[str, str, int]]:
    """The UTC days of ``[start, end]`` that have a daily index (``<alias>-YYYY.MM.DD``), as
    :func:`day_slices` gives them but with count -1 (not counted); when an index behind the
    alias is named otherwise, :func:`day_slices` itself."""
    try:
        names = list(client.indices.get_alias(name=alias))
    except NotFoundError as error:
        raise HuntError("no event store: the alias does not exist", source=alias) from error
    except (ApiError, TransportError) as error:
        raise HuntError(f"cannot list the event store's indices: {error}", source=alias) from error
    days: set[datetime] = set()
    for name in names:
        try:
            days.add(datetime.strptime(name.removeprefix(f"{alias}-"), "%Y.%m.%d").replace(tzinfo=UTC))
        except ValueError:
            return day_slices(client, alias, query)
    first = None if start is None else start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(iso(day), iso(day + timedelta(days=1)), -1) for day in sorted(days)
            if (first is None or day >= first) and (end is None or day <= end)]


def read_pages(client: Elasticsearch, alias: str, query: Mapping[str, Any], *, page_size: int = 5000,
               limit: int | None = None, keep_alive: str = "2m", prefetch: bool = True,
               slices: Sequence[tuple[str, str, int]] | None = None, workers: int = 2,
               stats: PageStats | None = None) -> Generator[list[dict[str, Any]], None, None]:
    """The ``_source`` of every event matching ``query``, oldest first, a page at a time.

    ``slices`` (from :func:`store_days` or :func:`day_slices`): read each day on its own, with
    its own PIT, up to ``workers`` days at once (each at most two pages ahead), and hand the
    pages over in day order — Elasticsearch fetches with several threads while the caller works.
    ``limit`` stops after that many events (per day with ``slices``). Each PIT is closed when
    its day is read or the iterator is closed (``contextlib.closing``).
    """
    stats = stats if stats is not None else PageStats()

    def reader(bounds: tuple[str, str, int] | None) -> Source:
        if bounds is None:
            return partial(_pages, client, alias, dict(query), None, page_size=page_size, limit=limit,
                           keep_alive=keep_alive)
        day = {"range": {"@timestamp": {"gte": bounds[0], "lt": bounds[1],
                                        "format": "strict_date_optional_time_nanos"}}}
        return partial(_pages, client, alias, {"bool": {"filter": [dict(query), day]}}, day,
                       page_size=page_size, limit=limit, keep_alive=keep_alive)

    sources = [reader(bounds) for bounds in slices] if slices is not None else [reader(None)]
    try:
        if prefetch:
            pages: Iterator[list[dict[str, Any]]] = _ordered(sources, workers)
        else:
            pages = (page for source in sources for page in source())
        for page in pages:
            stats.pages += 1
            stats.events += len(page)
            yield page
    except (ApiError, TransportError) as error:
        raise HuntError(f"reading the event store failed after {stats.events} events: {error}",
                        source=alias) from error


def _pages(client: Elasticsearch, alias: str, query: Mapping[str, Any], day: Mapping[str, Any] | None, *,
           page_size: int, limit: int | None, keep_alive: str) -> Generator[list[dict[str, Any]], None, None]:
    """One PIT's pages: over the indices that can hold ``day`` (every index without one)."""
    try:
        opened = client.open_point_in_time(index=alias, keep_alive=keep_alive,
                                           index_filter=dict(day) if day is not None else None)
    except NotFoundError as error:
        raise HuntError("no event store: the alias does not exist", source=alias) from error
    state = {"pit": opened["id"]}
    try:
        if limit is None:
            yield from _runs(client, state, query, page_size=page_size, keep_alive=keep_alive)
        else:
            yield from _limited(client, state, query, page_size=page_size, limit=limit, keep_alive=keep_alive)
    finally:
        try:
            client.close_point_in_time(id=state["pit"])
        except (ApiError, TransportError) as error:  # it expires after keep_alive anyway
            log_event(LOGGER, "pit_close_failed", logging.WARNING, error=repr(error))


def _bounded(query: Mapping[str, Any], after: list[Any] | None) -> dict[str, Any]:
    """``query`` and, after a page, ``@timestamp >=`` its last time (exact: the order is by time),
    so that Elasticsearch skips what was read."""
    if after is None:
        return dict(query)
    return {"bool": {"filter": [dict(query), {"range": {"@timestamp": {
        "gte": after[0], "format": "strict_date_optional_time_nanos"}}}]}}


def _limited(client: Elasticsearch, state: dict[str, str], query: Mapping[str, Any], *, page_size: int,
             limit: int, keep_alive: str) -> Generator[list[dict[str, Any]], None, None]:
    """At most ``limit`` events, ``_source`` fetched with the hits (timelines: a few pages)."""
    after: list[Any] | None = None
    left = limit
    while left > 0:
        size = min(page_size, left)
        response = client.search(
            pit={"id": state["pit"], "keep_alive": keep_alive}, query=_bounded(query, after),
            sort=list(EVENT_ORDER), size=size, search_after=after, track_total_hits=False,
            pre_filter_shard_size=1, filter_path=["pit_id", "hits.hits._source", "hits.hits.sort"])
        state["pit"] = response.get("pit_id", state["pit"])
        hits = (response.get("hits") or {}).get("hits") or []
        if not hits:
            return
        yield [hit["_source"] for hit in hits]
        left -= len(hits)
        if len(hits) < size:
            return
        after = hits[-1]["sort"]


def _runs(client: Elasticsearch, state: dict[str, str], query: Mapping[str, Any], *, page_size: int,
          keep_alive: str) -> Generator[list[dict[str, Any]], None, None]:
    """Every event matching ``query`` in :data:`EVENT_ORDER`, a page at a time.

    Fetching documents that are not adjacent costs Elasticsearch a decompression of their
    stored block each (``best_compression``: ~1.5 ms an event here, most of a hunt), and
    sorting on ``event.id`` as well made it several times slower. So a page of candidates that
    lie close together (a query that selects much) is read in two steps:

    1. the page's positions (``_shard_doc``) in time order, without documents;
    2. the documents as runs of adjacent positions, which Elasticsearch reads sequentially
       (the few events between two candidates included, and dropped here).

    Candidates far apart (a selective query) gain nothing from runs: their documents come with
    the hits, in one step. Each page decides for the next one from its own density.

    Events with the same time are put in ``event.id`` order here; the last time of a page is
    held back until the next page, which may hold more events of that time."""
    after: list[Any] | None = None
    held: list[tuple[str, dict[str, Any]]] = []
    dense = True
    while True:
        # The first page is small: the first matches show in a second, whatever the density.
        size = min(page_size, _FIRST_PAGE) if after is None else page_size
        response = client.search(
            pit={"id": state["pit"], "keep_alive": keep_alive}, query=_bounded(query, after),
            sort=list(POSITION_ORDER), size=size, search_after=after, track_total_hits=False,
            pre_filter_shard_size=1, stored_fields=["_none_"] if dense else None,
            filter_path=["pit_id", "hits.hits.sort", "hits.hits._source"])
        state["pit"] = response.get("pit_id", state["pit"])
        hits = (response.get("hits") or {}).get("hits") or []
        positions = [int(hit["sort"][-1]) for hit in hits]
        if dense and hits:
            documents = _documents(client, state, positions, keep_alive)
            found = [documents[position] for position in positions]
        else:
            found = [hit["_source"] for hit in hits]
        if hits:
            dense = max(positions) - min(positions) + 1 <= _DENSE * len(positions)
        page = held + [(str(hit["sort"][0]), document) for hit, document in zip(hits, found, strict=True)]
        held = []
        if len(hits) == size:
            cut = len(page)
            while cut > 0 and page[cut - 1][0] == page[-1][0]:
                cut -= 1
            page, held = page[:cut], page[cut:]
        if page:
            page.sort(key=_order_key)  # only events of the same time move
            yield [document for _time, document in page]
        if len(hits) < size:
            return
        after = hits[-1]["sort"]


# Adjacent positions further apart than this are read as two runs (reading the events between
# costs more than a second run); a run is at most the result window and at least 11 events
# (Elasticsearch reads sequentially from 11 adjacent documents on).
# A page is read in two steps when its candidates span at most _DENSE times their number.
_GAP, _RUN_MAX, _RUN_MIN, _RUNS_PER_REQUEST, _DENSE, _FIRST_PAGE = 8, 10_000, 11, 100, 3, 500


def _documents(client: Elasticsearch, state: dict[str, str], positions: Sequence[int],
               keep_alive: str) -> dict[int, dict[str, Any]]:
    """``_source`` by ``_shard_doc`` position, read as runs of adjacent documents."""
    ordered = sorted(set(positions))
    runs: list[tuple[int, int]] = []
    first = last = ordered[0]
    for position in ordered[1:]:
        if position - last > _GAP or position >> 32 != last >> 32 or position - first >= _RUN_MAX:
            runs.append((first, last))
            first = position
        last = position
    runs.append((first, last))
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(runs), _RUNS_PER_REQUEST):
        searches: list[dict[str, Any]] = []
        for low, high in runs[start:start + _RUNS_PER_REQUEST]:
            searches += [{}, {"pit": {"id": state["pit"], "keep_alive": keep_alive}, "query": {"match_all": {}},
                              "sort": [{"_shard_doc": "asc"}], "search_after": [low - 1],
                              "size": max(high - low + 1, _RUN_MIN), "track_total_hits": False}]
        response = client.msearch(searches=searches, filter_path=[
            "responses.hits.hits._source", "responses.hits.hits.sort", "responses.error"])
        for answer in response.get("responses") or ():
            if answer.get("error"):
                raise HuntError(f"reading events by position failed: {answer['error']}")
            for hit in (answer.get("hits") or {}).get("hits") or ():
                found[int(hit["sort"][-1])] = hit["_source"]
    missing = [position for position in positions if position not in found]
    if missing:  # a PIT keeps its documents: this would be a bug, never a silent loss
        raise HuntError(f"{len(missing)} events of a page could not be read back by position")
    return found


def _order_key(item: tuple[str, dict[str, Any]]) -> tuple[str, int, str]:
    """(time, event.id) as Elasticsearch sorts ``event.id`` ascending: the least of several
    values, events without one last."""
    moment, document = item
    value = get_field(document, "event.id")
    texts = [text for text in (value if isinstance(value, list) else [value]) if isinstance(text, str)]
    return (moment, 0, min(texts)) if texts else (moment, 1, "")


Source = Callable[[], Generator[list[dict[str, Any]], None, None]]


def _ordered(sources: Sequence[Source], workers: int) -> Iterator[list[dict[str, Any]]]:
    """The pages of each source in turn, up to ``workers`` sources fetched at once on threads,
    each at most two pages ahead of the caller (bounded memory)."""
    stop = threading.Event()
    pending = deque(sources)
    running: deque[tuple[queue.Queue[Any], threading.Thread]] = deque()

    def launch() -> None:
        slot: queue.Queue[Any] = queue.Queue(maxsize=2)
        worker = threading.Thread(target=_fill, args=(pending.popleft(), slot, stop), name="event-store-read",
                                  daemon=True)
        worker.start()
        running.append((slot, worker))

    try:
        while pending and len(running) < max(1, workers):
            launch()
        while running:
            slot, worker = running[0]
            item = slot.get()
            if item is _END:
                running.popleft()
                worker.join()
                if pending:
                    launch()
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for slot, worker in running:
            while worker.is_alive():
                try:
                    slot.get_nowait()
                except queue.Empty:
                    worker.join(0.05)


def _fill(source: Source, slot: queue.Queue[Any], stop: threading.Event) -> None:
    pages = source()
    try:
        for page in pages:
            while not stop.is_set():
                try:
                    slot.put(page, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        slot.put(_END)
    except BaseException as error:  # noqa: BLE001 - handed to the reading thread, re-raised there
        slot.put(error)
    finally:
        pages.close()
