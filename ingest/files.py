"""The file collector: JSON lines, text logs, EVTX and Windows JSON exports, with offsets.

``collect_paths`` reads files and directories of them once (or tails them with
``follow=True``), parses each record, normalizes and enriches it, and commits it to a sink
(the spool by default) together with the position reached in every file, so a restarted
collector resumes exactly where the last commit left off: no event lost, none twice.

Offsets (the sink's committed state):

- text files, by file identity ``text:<dev>:<inode>``: byte offset of the next unread line,
  the path the file was first seen at, a fingerprint of its first bytes (an inode reused by a
  new file must not inherit the old offset) and a generation bumped on truncation. Keying by
  inode instead of path is what makes rotation safe: after ``app.log`` becomes
  ``app.log.1`` the same entry continues under the new name, and a new ``app.log`` starts
  at 0. A file rotated away while the collector was down is found again among its siblings
  and its tail is read before the new file.
- EVTX and whole-file JSON exports, by path ``rec:<path>``: the record position reached.

``event.id`` of a record without its own id is derived from the file identity and the
position, so a re-read (after a crash before commit) produces the same ids.
"""

from __future__ import annotations

import fnmatch
import glob
import inspect
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.errors import IngestError, ParseError, SkippedLineError
from ingest.logs import log_event
from ingest.metrics import CollectorMetrics
from ingest.normalize import Normalizer
from ingest.parsers import FORMATS, PARSERS, parse_line, sniff
from ingest.parsers.jsonlog import parse_json_object
from ingest.parsers.winevent import iter_xml_events, looks_like_xml_file
from ingest.schema import Event, stable_id
from ingest.settings import CollectorSettings, FileSourceSettings
from ingest.sink import Sink, close_sink, lock_writer, unlock_writer
from ingest.spool import DeadLetter, SpoolWriter
from ingest.windows import iter_evtx, iter_json_events, normalize_record

_log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes read per system call; also the longest line kept whole
MAX_RAW = 16_384  # characters of a bad record kept in its dead letter
HEAD = 256  # bytes of a file's start that fingerprint it
# Not logs: compressed rotations (read them uncompressed), editor droppings, and the config and
# documentation files that sit beside logs in exported folders. Named explicitly, they are read.
SKIP_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tmp", ".swp", ".yml", ".yaml", ".md", ".rst", ".html")
MAX_INODE_ENTRIES = 10_000


@dataclass
class CollectStats:
    """What one run did: events committed, dead letters, header lines skipped, input bytes consumed, files read."""

    events: int = 0
    dead_letters: int = 0
    skipped: int = 0
    bytes: int = 0
    files: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Emitter:
    """Parse-to-sink step shared by the collectors: normalize, count, route failures.

    This is the operator boundary of the house rules: a record that breaks a parser in an
    unexpected way is counted and dead-lettered with the reason; it never stops the collector.
    """

    def __init__(self, sink: Sink, normalizer: Normalizer, metrics: CollectorMetrics, stats: CollectStats) -> None:
        self.sink = sink
        self.normalizer = normalizer
        self.metrics = metrics
        self.stats = stats
        self.input_name = "file"

    def event(self, event: Event, *, source_id: str, position: object, fmt: str) -> None:
        """Emit an event built without a parser step (the network sensor's records)."""
        self.guarded(lambda: (fmt, event), fmt=fmt, source=f"{source_id}@{position}", raw="",
                     source_id=source_id, position=position)

    def dead(self, reason: str, source: str, raw: str, fmt: str) -> None:
        self.sink.dead_letter(DeadLetter(reason, source, raw[:MAX_RAW]))
        self.stats.dead_letters += 1
        self.metrics.parse_failure(fmt)

    def guarded(self, parse: Callable[..., tuple[str, Event]], *args: Any, fmt: str, source: str, raw: str,
                source_id: str, position: object, extra: Callable[[Event], None] | None = None) -> None:
        """``parse(*args)``, add ``extra`` fields, normalize and append; dead-letter whatever goes wrong."""
        try:
            _, event = parse(*args)
            if extra is not None:
                extra(event)
            self.normalizer.finish(event, source_id=source_id, position=position, input_name=self.input_name)
        except SkippedLineError:
            self.stats.skipped += 1  # a header line (W3C #Fields:, a debug log's preamble): counted, not an event
            self.metrics.skipped.inc()
            return
        except ParseError as error:
            self.dead(error.reason, source, raw, fmt)
            return
        except Exception as error:  # noqa: BLE001 - operator boundary: count, dead-letter, go on
            log_event(_log, "parser_crashed", logging.WARNING, format=fmt, source=source, error=repr(error))
            self.dead(f"parser error: {error!r}", source, raw, fmt)
            return
        self.sink.append(event)
        self.stats.events += 1
        self.metrics.observe_event(event)


def _head_hash(data: bytes) -> str:
    return stable_id("head", data.hex())


class TextSource:
    """One open text file (an inode), read line by line from its committed byte offset."""

    kind = "text"

    def __init__(self, path: str, handle: Any, stat: os.stat_result, entry: Mapping[str, Any] | None,
                 *, fmt: str, emitter: Emitter, profile: FileSourceSettings | None = None) -> None:
        self.path = path
        self.profile = profile
        self._options: dict[str, Any] | None = None  # the parser's keyword options, once the format is known
        self.handle = handle
        self.dev, self.ino = stat.st_dev, stat.st_ino
        self.key = f"text:{self.dev}:{self.ino}"
        self.emitter = emitter
        self.fmt_option = fmt
        head = self._read_head()
        if entry and self._same_file(entry, head):
            self.offset = int(entry.get("offset", 0))
            self.first_path = str(entry.get("path", path))
            self.gen = int(entry.get("gen", 0))
            self.fmt = str(entry.get("fmt") or fmt)
            if stat.st_size < self.offset:
                self._truncated()
        else:
            # A new file; if its inode held another file before (reuse), a later generation
            # keeps the two files' event ids apart.
            self.offset, self.first_path, self.fmt = 0, path, fmt
            self.gen = int(entry.get("gen", 0)) + 1 if entry else 0
        self.head = head
        self.fid = stable_id("file", self.first_path, self.ino, self.gen)
        self.rotated = False
        self.finished = False

    def _read_head(self) -> bytes:
        self.handle.seek(0)
        return bytes(self.handle.read(HEAD))

    @staticmethod
    def _same_file(entry: Mapping[str, Any], head: bytes) -> bool:
        length = int(entry.get("head_len", 0))
        return len(head) >= length and _head_hash(head[:length]) == entry.get("head")

    def _truncated(self) -> None:
        log_event(_log, "file_truncated", path=self.path, offset=self.offset)
        self.offset = 0
        self.gen += 1
        self.fid = stable_id("file", self.first_path, self.ino, self.gen)
        self.head = self._read_head()

    def state(self) -> dict[str, Any]:
        if len(self.head) < HEAD and self.offset > len(self.head):
            self.head = self._read_head()  # the file grew: a longer fingerprint is a better one
        return {"path": self.path, "offset": self.offset, "gen": self.gen, "fmt": self.fmt,
                "head_len": len(self.head), "head": _head_hash(self.head), "first_path": self.first_path}

    def check(self) -> None:
        """Follow mode, at end of data: notice rotation, removal and truncation."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            self.rotated = True  # renamed or removed: read what is left, then let go
            return
        if (current.st_dev, current.st_ino) != (self.dev, self.ino):
            self.rotated = True
            log_event(_log, "file_rotated", path=self.path)
        elif current.st_size < self.offset:
            self._truncated()

    def poll(self, final: bool, budget: int) -> int:
        """Process up to ``budget`` lines; ``final`` takes a last line without newline. Returns bytes."""
        if self.fmt == "auto":
            self.fmt = sniff(self._sample(), self.path)
        consumed = 0
        lines = 0
        emitter = self.emitter
        while lines < budget:
            self.handle.seek(self.offset)
            data = self.handle.read(CHUNK)
            if not data:
                if final:
                    self.finished = True
                break
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < CHUNK and not final:
                    break  # a line still being written: wait for its newline
                end = len(data) - 1  # the final line, or one longer than CHUNK: take it whole
            block = data[: end + 1]
            position = self.offset
            for raw in block.split(b"\n")[:-1] if block.endswith(b"\n") else [block]:
                size = len(raw) + 1
                if raw.strip():
                    self._line(raw, position)
                    lines += 1
                position += size
                if lines >= budget:
                    break
            step = min(position, self.offset + len(block)) - self.offset
            self.offset += step
            consumed += step
        emitter.stats.bytes += consumed
        emitter.metrics.bytes.inc(consumed)
        return consumed

    def _line(self, raw: bytes, position: int) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        source = f"{self.path}:{position}"
        if self._options is None:
            self._options = parser_options(self.fmt, self.profile)
        # A module function and its arguments rather than closures made per line.
        self.emitter.guarded(_parse_file_line, self.fmt, text, source, self.path, position, self._options,
                             fmt=self.fmt, source=source, raw=text, source_id=self.fid, position=position)

    def _sample(self) -> list[str]:
        self.handle.seek(0)
        return self.handle.read(8192).decode("utf-8", "replace").splitlines()[:5]

    def close(self) -> None:
        self.handle.close()


def parser_options(fmt: str, profile: FileSourceSettings | None) -> dict[str, Any]:
    """The keyword options a file source's settings give its parser: ``zone`` to the parsers of zone-less
    time stamps, ``options`` to those that take format options, and ``host`` (applied after parsing)."""
    options: dict[str, Any] = {}
    if profile is None:
        return options
    accepted = inspect.signature(PARSERS[fmt]).parameters if fmt in PARSERS else {}
    if "zone" in accepted:
        options["zone"] = ZoneInfo(profile.timezone)
    if "options" in accepted and profile.options:
        options["options"] = dict(profile.options)
    if profile.host:
        options["host"] = profile.host
    return options


def _parse_file_line(  # noqa: PLR0917 - positional: Emitter.guarded passes them on, no closure per line
        fmt: str, text: str, source: str, path: str, position: int, options: Mapping[str, Any]) -> tuple[str, Event]:
    if options:
        host = options.get("host")
        parsed, event = parse_line(fmt, text, source=source, hint=path,
                                   **{key: value for key, value in options.items() if key != "host"})
        if host:
            named = event.get("host")
            if not isinstance(named, dict):
                event["host"] = named = {}
            named.setdefault("name", host)  # the line's own host name, where it has one, wins
    else:
        parsed, event = parse_line(fmt, text, source=source, hint=path)
    log = event.get("log")
    if not isinstance(log, dict):
        log = {}
        event["log"] = log
    log["file"] = {"path": path}
    log["offset"] = position
    return parsed, event


class RecordSource:
    """An EVTX file or a whole-file JSON export, read record by record from a position."""

    kind = "records"

    def __init__(self, path: str, entry: Mapping[str, Any] | None, fmt: str, emitter: Emitter) -> None:
        self.path = path
        self.key = f"rec:{path}"
        self.fmt = fmt  # "evtx", "winjson" or "winxml"
        self.emitter = emitter
        self.position = int(entry.get("position", 0)) if entry else 0
        self.signature = entry.get("signature") if entry else None
        self.fid = stable_id("records", path)
        self._iter: Iterator[tuple[int, Any, str]] | None = None
        self._undecoded = ""
        # Unchanged since it was read to the end: no need to parse it again to skip records.
        self.finished = bool(entry and entry.get("complete") and self.signature == self._stat_signature())
        self.rotated = False

    def _stat_signature(self) -> list[int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return [stat.st_ino, stat.st_size, stat.st_mtime_ns]

    def state(self) -> dict[str, Any]:
        return {"path": self.path, "position": self.position, "signature": self.signature, "fmt": self.fmt,
                "complete": self.finished}

    def check(self) -> None:
        signature = self._stat_signature()
        if signature is None:
            self.rotated = True
        elif self.finished and signature != self.signature:
            if self.signature and signature[0] != self.signature[0]:
                self.position = 0  # a different file now has this name
            self.finished, self._iter = False, None

    def _records(self) -> Iterator[tuple[int, Any, str]]:
        if self.fmt == "evtx":
            yield from iter_evtx(Path(self.path))
            return
        if self.fmt == "winxml":
            with open(self.path, "rb") as handle:
                yield from iter_xml_events(handle, source=self.path)
            return
        text = Path(self.path).read_text(encoding="utf-8", errors="replace")
        position = 0
        try:
            for value in iter_json_events(text):
                for item in value if isinstance(value, list) else [value]:
                    position += 1
                    yield position, item, ""
        except ValueError as error:
            # Keep what could not be read in the dead letter (from the start of the broken line),
            # so the record is not lost with the reason.
            at = getattr(error, "pos", 0)
            self._undecoded = text[text.rfind("\n", 0, at) + 1:]
            position += 1
            yield position, None, (f"JSON export undecodable after record {position - 1} "
                                   f"({len(self._undecoded.encode())} bytes not read): {error}")

    def poll(self, final: bool, budget: int) -> int:
        if self.finished:
            return 0
        if self._iter is None:
            self.signature = self._stat_signature()
            try:
                self._iter = self._records()
            except (OSError, IngestError) as error:
                self.emitter.dead(f"unreadable: {error}", self.path, "", self.fmt)
                self.finished = True
                return 0
        done = 0
        emitter = self.emitter
        start_position = self.position
        for position, record, note in self._iter:
            if position <= self.position:
                continue
            source = f"{self.path}#{position}"
            if record is None:
                emitter.dead(note, source, self._undecoded, self.fmt)
            elif self.fmt == "winxml":
                emitter.guarded(_parsed(record), fmt="winxml", source=source, raw="",
                                source_id=self.fid, position=position, extra=self._file_fields)
            elif self.fmt == "evtx":
                emitter.guarded(_windows_parse(record, source), fmt="evtx", source=source, raw=note,
                                source_id=self.fid, position=position, extra=self._file_fields)
            else:
                emitter.guarded(_json_parse(record, source), fmt="winjson", source=source, raw=_dump(record),
                                source_id=self.fid, position=position, extra=self._file_fields)
            self.position = position
            done += 1
            if done >= budget:
                return 1
        self.finished = True
        size = self.signature[1] if self.signature and self.position > start_position else 0
        emitter.stats.bytes += size
        emitter.metrics.bytes.inc(size)
        return size or 1

    def _file_fields(self, event: Event) -> None:
        event.setdefault("log", {})["file"] = {"path": self.path}

    def close(self) -> None:
        self._iter = None


def _windows_parse(record: Any, source: str) -> Callable[[], tuple[str, Event]]:
    return lambda: ("windows", normalize_record(record, source=source))


def _parsed(event: Event) -> Callable[[], tuple[str, Event]]:
    return lambda: ("winxml", event)


def _json_parse(record: Any, source: str) -> Callable[[], tuple[str, Event]]:
    def parse() -> tuple[str, Event]:
        if not isinstance(record, dict):
            raise ParseError(f"not a JSON object but {type(record).__name__}", source=source)
        return parse_json_object(record, _dump(record), source=source)

    return parse


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:MAX_RAW]
    except (ValueError, TypeError):
        return repr(value)[:MAX_RAW]


def _kind_of(path: Path, fmt: str) -> str:  # noqa: PLR0911 - first match wins
    """``evtx``, ``winjson`` (whole-file JSON values), ``winxml`` or a text line format."""
    if fmt in ("winxml", "wef", "wevtutil"):
        return "winxml"  # an event's text may span lines: the file is read as one document
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if name.endswith(".evtx"):
        return "evtx"
    with path.open("rb") as handle:
        head = handle.read(CHUNK)
    stripped = head.lstrip()
    if looks_like_xml_file(head):
        return "winxml"  # <Event> elements, one per line or spread over lines: read as a document
    if stripped.startswith(b"[") and stripped[1:].lstrip()[:1] in (b"{", b"]"):
        return "winjson"  # one JSON array of records (not "[12.345] kernel: ..." lines)
    first, newline, rest = stripped.partition(b"\n")
    first = first.strip()
    if first == b"{":
        return "winjson"  # pretty-printed: values span lines
    if first.startswith(b"{") and name.endswith(".json"):
        # A .json export whose first two lines are not objects (concatenated or pretty-printed
        # values) is read whole; elsewhere a bad first line is just a bad line, and so is a first
        # line longer than the bytes read (it cannot be judged whole: lines are the safer reading).
        if not newline and len(head) == CHUNK:
            return "auto"
        if _json_object(first) or _json_object(_next_line(rest, cut=len(head) == CHUNK)):
            # JSON lines (the first one perhaps torn by a crash): sniffing tells a catalogued JSON
            # format (journald) from plain JSON, and a bad line is one dead letter, not the file.
            return "auto"
        return "winjson"
    return "auto"


def _json_object(line: bytes) -> bool:
    if not line.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _next_line(rest: bytes, *, cut: bool) -> bytes:
    """The first non-blank line of ``rest`` that the bytes read hold whole (``cut``: the last may not be)."""
    lines = rest.split(b"\n")
    for line in lines[:-1] if cut else lines:
        if line.strip():
            return line.strip()
    return b""


def expand(paths: Iterable[Path | str]) -> list[Path]:
    """Files named, and the log files under directories named, in a stable order."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.exists() and glob.has_magic(str(item)):
            found.extend(expand(sorted(glob.glob(str(item), recursive=True))))
            continue
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not _skipped(child):
                    found.append(child)
        elif path.exists():
            found.append(path)
    return found


def _skipped(path: Path) -> bool:
    name = path.name
    return name.startswith((".", "_")) or name.lower().endswith(SKIP_SUFFIXES)


class FileCollector:
    """Reads a set of paths into a sink; see :func:`collect_paths`."""

    def __init__(self, paths: Sequence[Path | str], sink: Sink, normalizer: Normalizer, settings: CollectorSettings,
                 *, collector: str = "files", follow: bool = False, fmt: str = "auto",
                 stop: threading.Event | None = None, progress: bool | None = None,
                 sources: Sequence[FileSourceSettings] = ()) -> None:
        for name in (fmt, *(source.format for source in sources)):
            if name not in (*FORMATS, "evtx", "winjson"):
                raise IngestError(f"unknown format {name!r}; choose from {', '.join((*FORMATS, 'evtx', 'winjson'))}")
        self.paths = [Path(p) for p in paths] + [Path(p) for source in sources for p in source.paths]
        self.profiles = tuple(sources)
        self.sink = sink
        self.settings = settings
        self.follow = follow
        self.fmt = fmt
        self.stop = stop or threading.Event()
        self.stats = CollectStats()
        self.metrics = CollectorMetrics(collector)
        self.emitter = Emitter(sink, normalizer, self.metrics, self.stats)
        self.emitter.input_name = "file"
        self.offsets: dict[str, Any] = dict(sink.offsets)
        self.sources: dict[str, TextSource | RecordSource] = {}
        self.by_path: dict[str, str] = {}
        self._last_commit = time.monotonic()
        self._events_at_commit = 0
        self._dead_at_commit = 0
        self.progress_wanted = progress if progress is not None else sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None

    # -- discovery --------------------------------------------------------------------------
    def _discover(self) -> None:
        for path in expand(self.paths):
            name = os.path.abspath(path)
            try:
                stat = os.stat(name)
            except OSError:
                continue
            profile = self._profile(name)
            forced = self.fmt if self.fmt != "auto" or profile is None else profile.format
            kind = _kind_of(Path(name), forced) if name not in self.by_path else None
            if kind is None:
                continue
            if kind in ("evtx", "winjson", "winxml"):
                key = f"rec:{name}"
                if key not in self.sources:
                    self.sources[key] = RecordSource(name, self.offsets.get(key), kind, self.emitter)
                    self.by_path[name] = key
                    self.stats.files += 1
                continue
            key = f"text:{stat.st_dev}:{stat.st_ino}"
            if key in self.sources:
                continue  # already open under its old name (a rotation in progress)
            self._resume_rotated_tail(name, stat)
            try:
                handle = open(name, "rb")  # noqa: SIM115 - held open across polls by the source
            except OSError as error:
                log_event(_log, "file_unreadable", logging.WARNING, path=name, error=str(error))
                continue
            stat = os.fstat(handle.fileno())
            source = TextSource(name, handle, stat, self.offsets.get(source_key(stat)), fmt=kind,
                                emitter=self.emitter, profile=profile)
            self.sources[source.key] = source
            self.by_path[name] = source.key
            self.stats.files += 1

    def _profile(self, name: str) -> FileSourceSettings | None:
        """The configured file source whose paths (files, directories, globs) take in ``name``, if any."""
        for profile in self.profiles:
            for pattern in profile.paths:
                full = os.path.abspath(pattern)
                if name == full or name.startswith(full.rstrip("/") + "/") or fnmatch.fnmatchcase(name, full):
                    return profile
        return None

    def _resume_rotated_tail(self, name: str, stat: os.stat_result) -> None:
        """A file that had ``name`` before a restart and was rotated meanwhile: read its tail first."""
        for key, entry in list(self.offsets.items()):
            if not key.startswith("text:") or key in self.sources or not isinstance(entry, dict):
                continue
            if entry.get("path") != name or key == f"text:{stat.st_dev}:{stat.st_ino}" or entry.get("gone"):
                continue
            directory = os.path.dirname(name)
            try:
                siblings = os.listdir(directory)
            except OSError:
                return
            for sibling in siblings:
                full = os.path.join(directory, sibling)
                try:
                    sibling_stat = os.stat(full)
                except OSError:
                    continue
                if source_key(sibling_stat) == key and full != name:
                    with open(full, "rb") as handle:
                        fmt = self.fmt if self.fmt != "auto" else str(entry.get("fmt", "auto"))
                        source = TextSource(full, handle, os.fstat(handle.fileno()), entry, fmt=fmt,
                                            emitter=self.emitter, profile=self._profile(name))
                        log_event(_log, "file_rotated_tail", path=full, offset=source.offset)
                        while not source.finished and not self.stop.is_set():
                            source.poll(True, self.settings.commit_events)
                            self.offsets[key] = source.state()
                            self._maybe_commit()
                    self.offsets[key] = source.state()
                    break
            else:
                # Rotated away and no longer beside it (deleted, compressed): nothing to resume.
                log_event(_log, "file_rotated_tail_not_found", path=name, offset=entry.get("offset"))
                self.offsets[key] = {**entry, "gone": True}

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> CollectStats:
        self._discover()
        self._start_progress()
        try:
            if self.follow:
                self._follow()
            else:
                for key in list(self.sources):
                    source = self.sources[key]
                    while not source.finished and not self.stop.is_set():
                        consumed = source.poll(True, self._budget())
                        self._advance(consumed)
                        self._maybe_commit()
                    self._retire(key)
            self._commit()
        finally:
            for source in self.sources.values():
                source.close()
            if self._progress is not None:
                self._progress.stop()
        log_event(_log, "collect_done", **self.stats.as_dict())
        return self.stats

    def _follow(self) -> None:
        last_scan = time.monotonic()
        while not self.stop.is_set():
            busy = False
            for key in list(self.sources):
                source = self.sources[key]
                consumed = source.poll(source.rotated, self._budget())
                if consumed:
                    busy = True
                    self._advance(consumed)
                else:
                    if source.rotated and (source.finished or source.kind == "text"):
                        self._retire(key)
                        continue
                    source.check()
                self._maybe_commit()
            now = time.monotonic()
            if now - last_scan >= self.settings.poll_interval_s:
                self._discover()
                last_scan = now
            if not busy:
                self._maybe_commit()
                self.stop.wait(self.settings.poll_interval_s)

    def _retire(self, key: str) -> None:
        source = self.sources.pop(key)
        self.offsets[key] = source.state()
        if self.by_path.get(source.path) == key:
            del self.by_path[source.path]
        source.close()

    def _budget(self) -> int:
        # Small enough steps that commits by time and the progress display stay timely.
        return max(1, min(5_000, self.settings.commit_events - self.sink.events_uncommitted))

    def _advance(self, consumed: int) -> None:
        if self._progress is not None and consumed:
            self._progress.update(self._task, advance=consumed, events=self.stats.events)

    def _maybe_commit(self) -> None:
        if (self.sink.events_uncommitted >= self.settings.commit_events
                or time.monotonic() - self._last_commit >= self.settings.commit_interval_s):
            self._commit()

    def _commit(self) -> None:
        for key, source in self.sources.items():
            self.offsets[key] = source.state()
        if len(self.offsets) > MAX_INODE_ENTRIES:
            self._prune()
        started = time.monotonic()
        committed = self.sink.commit(self.offsets)
        self._last_commit = time.monotonic()
        self.metrics.received.inc(self.stats.events - self._events_at_commit)
        self._events_at_commit = self.stats.events
        self.metrics.committed(committed)
        waited = self._last_commit - started
        if waited > 1.0:
            self.metrics.backpressure.inc(waited)

    def _prune(self) -> None:
        # Entries of files that no longer exist anywhere we look; keep the open ones.
        for key in [k for k, v in self.offsets.items()
                    if k not in self.sources and isinstance(v, dict) and not os.path.exists(str(v.get("path")))]:
            del self.offsets[key]

    def _start_progress(self) -> None:
        if not self.progress_wanted:
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        total = 0
        for source in self.sources.values():
            try:
                size = os.stat(source.path).st_size
            except OSError:
                continue
            done = source.offset if isinstance(source, TextSource) else 0
            total += max(0, size - done)
        self._progress = Progress(TextColumn("[bold]collect files"), BarColumn(), DownloadColumn(),
                                  TimeRemainingColumn(), TextColumn("{task.fields[events]} events"),
                                  console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task("files", total=None if self.follow else total, events=0)
        self._progress.start()


def source_key(stat: os.stat_result) -> str:
    return f"text:{stat.st_dev}:{stat.st_ino}"


def collect_paths(
    paths: Sequence[Path | str],
    spool_dir: Path | str,
    *,
    settings: CollectorSettings,
    writer_id: str = "files",
    follow: bool = False,
    progress: bool | None = None,
    fmt: str = "auto",
    sink: Sink | None = None,
    normalizer: Normalizer | None = None,
    stop: threading.Event | None = None,
    sources: Sequence[FileSourceSettings] = (),
) -> CollectStats:
    """Collect ``paths`` (files or directories) into the spool at ``spool_dir``; return the stats.

    Without ``follow`` it returns once every file is read to its end; with ``follow`` it tails
    until ``stop`` is set. ``progress``: a rich progress bar on stderr (None: when it is a
    TTY). ``fmt`` forces a parser (``auto`` sniffs each file). ``sink`` replaces the spool
    writer (e.g. a Kafka sink); ``normalizer`` replaces the one built from ``settings``.
    ``sources``: configured file sources (``collector.files``): their paths are read too, and each
    file under one gets its format, time zone, host and options.
    """
    own_sink = sink is None
    locked = own_sink and lock_writer(Path(spool_dir), writer_id)
    try:
        if sink is None:
            sink = SpoolWriter(Path(spool_dir), writer_id, batch_size=settings.batch_size)
        normalizer = normalizer or Normalizer.from_settings(settings, writer_id)
        collector = FileCollector(paths, sink, normalizer, settings, collector=writer_id, follow=follow, fmt=fmt,
                                  stop=stop, progress=progress, sources=sources)
        return collector.run()
    finally:
        if own_sink and sink is not None:
            close_sink(sink)
        if locked:
            unlock_writer(Path(spool_dir), writer_id)
