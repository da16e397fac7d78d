"""The event writer's position in a spool, which is also its consumed list for spool pruning.

Kept in ``<spool>/consumers/event-store.json`` (written whole, fsynced, renamed over the old
one): for each sealed segment the lines Elasticsearch acknowledged, the segments read to their
end (``done``) and the collectors' dead-letter files stored (``deadletters``).

Every file in ``<spool>/consumers/`` is a consumer the pruner waits for
(``ingest.spool_prune``): a segment is deleted only when the Flink job's consumed list and the
``done`` list of every registered consumer name it. The file appears on the writer's first run
over a spool; a spool whose events are not stored has no such file and is pruned as before.
To retire the writer from a spool for good, delete its file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.spool_prune import CONSUMERS_DIR

WRITER_NAME = "event-store"


def position_path(spool_dir: Path) -> Path:
    return spool_dir / CONSUMERS_DIR / f"{WRITER_NAME}.json"


@dataclass
class WriterPosition:
    """Lines of each segment acknowledged, segments and dead-letter files finished."""

    lines: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    deadletters: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> (lines, bytes) stored

    @classmethod
    def load(cls, path: Path) -> WriterPosition:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(lines={str(k): int(v) for k, v in data.get("lines", {}).items()},
                   done=set(data.get("done", [])),
                   deadletters={str(k): (int(v[0]), int(v[1])) for k, v in data.get("deadletters", {}).items()})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump({"lines": self.lines, "done": sorted(self.done), "deadletters": self.deadletters}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def forget_missing(self, existing: set[str]) -> bool:
        """Drop segments no longer on disk (pruned); True when something was dropped."""
        gone = (self.done | set(self.lines)) - existing
        for name in gone:
            self.done.discard(name)
            self.lines.pop(name, None)
        return bool(gone)

