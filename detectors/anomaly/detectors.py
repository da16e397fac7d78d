"""Anomaly detectors: each a small state dataclass and pure ``step`` / ``on_timer`` functions.

A detector sees compact items (``{"t": epoch ms, "id": event id, ...}`` plus the one or two
fields it needs) for one group (a source address, an account, a domain, a node), in event-time
order, and returns detections. Time is the item's event time — never the wall clock — so a
replay, a restored Flink job and a test give the same alerts. Every state has a versioned
``to_snapshot`` / ``from_snapshot`` and a time-to-live: ``next_timer`` says when event time
must call ``on_timer``, which prunes or drops the state so memory stays bounded.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, Generic, TypeVar

from detectors.anomaly.config import (
    BeaconSettings,
    BruteForceSettings,
    DetectorBase,
    DistinctSettings,
    DnsTunnelSettings,
    FirstSeenSettings,
    SpraySettings,
    VolumeSettings,
)
from detectors.errors import DetectorError
from detectors.model import Detection, RuleInfo
from ingest.schema import format_timestamp, stable_id

SNAPSHOT_VERSION = 1
# At most this many events are named by one anomaly detection (the most recent ones).
MAX_EVENTS_PER_ALERT = 50

Item = Mapping[str, Any]
Fields = Mapping[str, Any]


def iso(moment_ms: int) -> str:
    return format_timestamp(datetime.fromtimestamp(moment_ms / 1000, UTC))


def _check_version(snap: Mapping[str, Any], kind: str) -> None:
    if snap.get("v") != SNAPSHOT_VERSION:
        raise DetectorError(f"{kind} state snapshot version {snap.get('v')!r} is not supported")


def short_hash(text: str) -> str:
    """12 hex digits: enough to tell values of one key apart, small enough for millions of keys."""
    return stable_id(text)[:12]


S = TypeVar("S")


class Detector(Generic[S]):
    """Base of the detectors: routing from normalized fields and the state protocol."""

    name: ClassVar[str] = ""
    state_type: Any
    # ``needs``: extracted fields any of which being None makes ``route`` send nothing;
    # ``reads``: every field it reads. The router skips a detector whose needs an event lacks
    # and looks up only what the remaining detectors read (``anomaly.logic``).
    needs: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: DetectorBase, rule: RuleInfo) -> None:
        self.settings = settings
        self.rule = rule

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        """The (group, item) of one event's extracted fields (see ``anomaly.logic``), or None
        when the event is not for this detector or cannot change its key's state (keyed state
        costs far more per item than the routing does)."""
        raise NotImplementedError

    def new_state(self) -> S:
        return self.state_type()

    def step(self, state: S, item: Item, group: str) -> tuple[S, list[Detection]]:
        raise NotImplementedError

    def next_timer(self, state: S) -> int | None:
        raise NotImplementedError

    def on_timer(self, state: S, now: int, group: str) -> tuple[S | None, list[Detection]]:
        """Prune; return None as the state when the key has nothing left to remember."""
        raise NotImplementedError

    def decode(self, snap: Mapping[str, Any]) -> S:
        return self.state_type.from_snapshot(snap)

    def detection(
        self,
        rows: list[list[Any]],
        group: Mapping[str, Any],
        *,
        rule: RuleInfo | None = None,
        moment: int | None = None,
    ) -> Detection:
        """A detection naming the events of ``rows`` (``[t, id, ...]``), most recent kept."""
        picked = sorted(rows, key=lambda row: (row[0], row[1]))[-MAX_EVENTS_PER_ALERT:]
        events = [{"@timestamp": iso(row[0]), "event": {"id": row[1]}} for row in picked]
        last = moment if moment is not None else picked[-1][0]
        return Detection.for_events(
            rule or self.rule, events, kind="anomaly", group={"detector": self.name, **group}, timestamp=iso(last)
        )


# --- distinct values per source in windows: port scans and host scans -------------------


@dataclass(slots=True)
class DistinctState:
    """``seen``: value -> [last time, last event id]; ``quiet_until``: no re-alert before."""

    seen: dict[str, list[Any]] = field(default_factory=dict)
    quiet_until: int = 0
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "s": self.seen, "q": self.quiet_until, "l": self.last_t}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> DistinctState:
        _check_version(snap, "distinct")
        return cls(seen={k: list(v) for k, v in snap["s"].items()}, quiet_until=snap["q"], last_t=snap["l"])


class DistinctDetector(Detector[DistinctState]):
    """Alert when one source reaches N distinct values (ports or hosts) within a window."""

    state_type = DistinctState
    value_field: ClassVar[str] = ""
    group_field: ClassVar[str] = "source.ip"

    def __init__(self, settings: DistinctSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.windows = sorted((int(w.seconds * 1000), w.distinct) for w in settings.windows)
        self.horizon = self.windows[-1][0]
        # Keep a little more than the largest threshold: enough to decide, bounded memory.
        self.cap = 2 * max(distinct for _, distinct in self.windows)
        self.internal_only = settings.internal_only

    def step(self, state: DistinctState, item: Item, group: str) -> tuple[DistinctState, list[Detection]]:
        now = int(item["t"])
        state.seen[str(item["x"])] = [now, item["id"]]
        state.last_t = max(state.last_t, now)
        self._prune(state, now)
        out: list[Detection] = []
        if now >= state.quiet_until:
            for span, distinct in self.windows:
                rows = [[t, ident, value] for value, (t, ident) in state.seen.items() if t > now - span]
                if len(rows) >= distinct:
                    out.append(self.detection(rows, {self.group_field: group, "distinct": len(rows),
                                                     "window_s": span // 1000}, moment=now))
                    state.quiet_until = now + self.horizon
                    break
        return state, out

    def _prune(self, state: DistinctState, now: int) -> None:
        old = [value for value, (t, _) in state.seen.items() if t <= now - self.horizon]
        for value in old:
            del state.seen[value]
        if len(state.seen) > self.cap:
            for value, _ in sorted(state.seen.items(), key=lambda kv: kv[1][0])[: len(state.seen) - self.cap]:
                del state.seen[value]

    def next_timer(self, state: DistinctState) -> int | None:
        return max(state.last_t + self.horizon, state.quiet_until)

    def on_timer(self, state: DistinctState, now: int, group: str) -> tuple[DistinctState | None, list[Detection]]:
        self._prune(state, now)
        return (state if state.seen or now < state.quiet_until else None), []


class PortScan(DistinctDetector):
    name = "portscan"
    needs = reads = ("src", "dst", "port")

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        if fields.get("src") is None or fields.get("port") is None or fields.get("dst") is None:
            return None
        return str(fields["src"]), {"t": fields["t"], "id": fields["id"], "x": fields["port"]}


@lru_cache(maxsize=65_536)
def is_internal(address: Any) -> bool:
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return ip.is_private


class HostScan(DistinctDetector):
    name = "hostscan"
    needs = reads = ("src", "dst", "port")

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        dst = fields.get("dst")
        if fields.get("src") is None or dst is None or fields.get("port") is None:
            return None
        if self.internal_only and not is_internal(dst):
            return None
        return str(fields["src"]), {"t": fields["t"], "id": fields["id"], "x": dst}


# --- authentication: brute force on one account, spraying over many ----------------------


@dataclass(slots=True)
class FailureState:
    """``fails``: recent failures ``[t, id, other]`` (other = user or source)."""

    fails: list[list[Any]] = field(default_factory=list)
    quiet_until: int = 0
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "f": self.fails, "q": self.quiet_until, "l": self.last_t}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> FailureState:
        _check_version(snap, "failure")
        return cls(fails=[list(row) for row in snap["f"]], quiet_until=snap["q"], last_t=snap["l"])


class BruteForce(Detector[FailureState]):
    """Many failures of one account in a window; a success after them is a second, higher alert."""

    name = "bruteforce"
    state_type = FailureState
    needs = ("outcome", "user")
    reads = ("outcome", "user", "src")

    def __init__(self, settings: BruteForceSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.window = int(settings.window_s * 1000)
        self.failures = settings.failures
        self.success_rule = RuleInfo(
            id=stable_id("socflow-anomaly", "bruteforce_success"),
            title="Brute force followed by a successful logon",
            level=settings.success_level,
            tags=("attack.credential-access", "attack.t1110.001"),
            description="An account had many failed logons and then a successful one.",
            author="socflow",
            name="socflow_bruteforce_success",
        )

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        if fields.get("outcome") not in ("failure", "success") or not fields.get("user"):
            return None
        return str(fields["user"]).lower(), {"t": fields["t"], "id": fields["id"], "o": fields["outcome"][0],
                                             "s": fields.get("src")}

    def step(self, state: FailureState, item: Item, group: str) -> tuple[FailureState, list[Detection]]:
        now = int(item["t"])
        state.last_t = max(state.last_t, now)
        state.fails = [row for row in state.fails if row[0] > now - self.window]
        out: list[Detection] = []
        if item["o"] == "s":
            if len(state.fails) >= self.failures:
                rows = [*state.fails, [now, item["id"], item.get("s")]]
                out.append(self.detection(rows, {"user.name": group, "failures": len(state.fails)},
                                          rule=self.success_rule))
            state.fails = []
            return state, out
        state.fails.append([now, item["id"], item.get("s")])
        del state.fails[: max(0, len(state.fails) - 2 * self.failures)]
        if len(state.fails) >= self.failures and now >= state.quiet_until:
            sources = sorted({str(row[2]) for row in state.fails})
            out.append(self.detection(state.fails, {"user.name": group, "failures": len(state.fails),
                                                    "sources": sources[:20]}))
            state.quiet_until = now + self.window
        return state, out

    def next_timer(self, state: FailureState) -> int | None:
        return max(state.last_t, state.quiet_until) + self.window

    def on_timer(self, state: FailureState, now: int, group: str) -> tuple[FailureState | None, list[Detection]]:
        state.fails = [row for row in state.fails if row[0] > now - self.window]
        return (state if state.fails or now < state.quiet_until else None), []


class Spray(Detector[FailureState]):
    """Failures over many distinct accounts from one source (password spraying)."""

    name = "spray"
    state_type = FailureState
    needs = reads = ("outcome", "user", "src")

    def __init__(self, settings: SpraySettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.window = int(settings.window_s * 1000)
        self.distinct = settings.distinct_users

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        if fields.get("outcome") != "failure" or not fields.get("user") or not fields.get("src"):
            return None
        return str(fields["src"]), {"t": fields["t"], "id": fields["id"], "u": str(fields["user"]).lower()}

    def step(self, state: FailureState, item: Item, group: str) -> tuple[FailureState, list[Detection]]:
        now = int(item["t"])
        state.last_t = max(state.last_t, now)
        # One row per account (the latest failure), so a source hammering one account stays small.
        kept = [row for row in state.fails if row[0] > now - self.window and row[2] != item["u"]]
        kept.append([now, item["id"], item["u"]])
        state.fails = kept[-2 * self.distinct:]
        out: list[Detection] = []
        if len(state.fails) >= self.distinct and now >= state.quiet_until:
            out.append(self.detection(state.fails, {"source.ip": group, "accounts": len(state.fails)}))
            state.quiet_until = now + self.window
        return state, out

    def next_timer(self, state: FailureState) -> int | None:
        return max(state.last_t, state.quiet_until) + self.window

    def on_timer(self, state: FailureState, now: int, group: str) -> tuple[FailureState | None, list[Detection]]:
        state.fails = [row for row in state.fails if row[0] > now - self.window]
        return (state if state.fails or now < state.quiet_until else None), []


# --- beaconing: regular intervals from a source to a destination --------------------------


@dataclass(slots=True)
class BeaconState:
    """Most recent check-in times of one pair and the ids of the last few."""

    times: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    quiet_until: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "t": self.times, "i": self.ids, "q": self.quiet_until}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> BeaconState:
        _check_version(snap, "beacon")
        return cls(times=list(snap["t"]), ids=list(snap["i"]), quiet_until=snap["q"])


class Beacon(Detector[BeaconState]):
    """Connections of a source to a destination at regular intervals (low jitter)."""

    name = "beacon"
    state_type = BeaconState
    needs = reads = ("src", "dst", "port")

    def __init__(self, settings: BeaconSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.s = settings
        self.merge = int(settings.merge_within_s * 1000)
        self.ignore_ports = frozenset(settings.ignore_ports) | frozenset(str(port) for port in settings.ignore_ports)

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        if fields.get("src") is None or fields.get("dst") is None or fields.get("port") is None:
            return None
        if self.ignore_ports and fields["port"] in self.ignore_ports:
            return None
        group = f"{fields['src']}>{fields['dst']}:{fields['port']}"
        return group, {"t": fields["t"], "id": fields["id"]}

    def step(self, state: BeaconState, item: Item, group: str) -> tuple[BeaconState, list[Detection]]:
        now = int(item["t"])
        if state.times and now - state.times[-1] <= self.merge:
            return state, []  # same check-in (several connections a few ms apart)
        state.times.append(now)
        state.ids.append(str(item["id"]))
        del state.times[: max(0, len(state.times) - self.s.history)]
        del state.ids[: max(0, len(state.ids) - self.s.min_events)]
        out: list[Detection] = []
        if len(state.times) >= self.s.min_events and now >= state.quiet_until:
            intervals = [b - a for a, b in zip(state.times, state.times[1:], strict=False)]
            mean = sum(intervals) / len(intervals)
            std = math.sqrt(sum((x - mean) ** 2 for x in intervals) / len(intervals))
            median = sorted(intervals)[len(intervals) // 2]
            cv = std / mean if mean > 0 else math.inf
            if self.s.min_interval_s * 1000 <= median <= self.s.max_interval_s * 1000 and cv <= self.s.max_cv:
                src, _, dst = group.partition(">")
                rows = [[t, ident] for t, ident in zip(state.times[-len(state.ids):], state.ids, strict=False)]
                out.append(self.detection(rows, {"source.ip": src, "destination": dst,
                                                 "interval_s": round(median / 1000, 1), "cv": round(cv, 3)}))
                state.quiet_until = now + int(self.s.cooldown_s * 1000)
        return state, out

    def next_timer(self, state: BeaconState) -> int | None:
        if not state.times:
            return None
        return max(state.times[-1] + 2 * int(self.s.max_interval_s * 1000), state.quiet_until)

    def on_timer(self, state: BeaconState, now: int, group: str) -> tuple[BeaconState | None, list[Detection]]:
        expiry = self.next_timer(state)
        return (None if expiry is None or now >= expiry else state), []


# --- DNS tunnels: long high-entropy labels and many subdomains per domain -----------------

# Second-level labels under which registrations happen one level deeper (gov.vn, co.uk ...).
_SECOND_LEVEL = frozenset({"com", "gov", "edu", "org", "net", "co", "ac", "int", "mil", "info", "name", "biz"})


def registered_domain(name: str) -> tuple[str, str]:
    """(registered domain, subdomain part) with a small public-suffix heuristic."""
    labels = name.lower().rstrip(".").split(".")
    take = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-take:]), ".".join(labels[:-take])


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


@dataclass(slots=True)
class DnsState:
    """Suspicious queries ``[t, id]`` and distinct subdomain hashes with their last time."""

    suspicious: list[list[Any]] = field(default_factory=list)
    subs: dict[str, int] = field(default_factory=dict)
    quiet_until: int = 0
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "x": self.suspicious, "s": self.subs, "q": self.quiet_until, "l": self.last_t}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> DnsState:
        _check_version(snap, "dns")
        return cls(suspicious=[list(r) for r in snap["x"]], subs=dict(snap["s"]), quiet_until=snap["q"],
                   last_t=snap["l"])


_NAMES_LIMIT = 16_384  # query names a routing task remembers the classification of


class DnsTunnel(Detector[DnsState]):
    """Per registered domain: many long, high-entropy subdomain labels, or many subdomains."""

    name = "dns_tunnel"
    state_type = DnsState
    needs = reads = ("dns",)

    def __init__(self, settings: DnsTunnelSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.s = settings
        self.window = int(settings.window_s * 1000)
        # name -> (domain, suspicious, subdomain hash), () without a subdomain: most queries
        # repeat a few names, and the entropy and hash cost more than the rest of routing.
        self._names: dict[str, tuple[str, int, str] | tuple[()]] = {}

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        name = fields.get("dns")
        if not isinstance(name, str) or not name:
            return None
        known = self._names.get(name)
        if known is None:
            if len(self._names) >= _NAMES_LIMIT:
                self._names.clear()
            known = self._names[name] = self._classify(name)
        if not known:
            return None
        domain, suspicious, digest = known
        return domain, {"t": fields["t"], "id": fields["id"], "x": suspicious, "h": digest}

    def _classify(self, name: str) -> tuple[str, int, str] | tuple[()]:
        domain, sub = registered_domain(name)
        if not sub:
            return ()
        longest = max(len(label) for label in sub.split("."))
        suspicious = longest >= self.s.min_label_length and entropy(sub.replace(".", "")) >= self.s.min_entropy
        return domain, int(suspicious), short_hash(sub)

    def step(self, state: DnsState, item: Item, group: str) -> tuple[DnsState, list[Detection]]:
        now = int(item["t"])
        state.last_t = max(state.last_t, now)
        self._prune(state, now)
        if item["x"]:
            state.suspicious.append([now, item["id"]])
            del state.suspicious[: max(0, len(state.suspicious) - 2 * self.s.suspicious_queries)]
        state.subs[str(item["h"])] = now
        if len(state.subs) > self.s.distinct_subdomains + 1:
            oldest = min(state.subs, key=state.subs.__getitem__)
            del state.subs[oldest]
        out: list[Detection] = []
        if now >= state.quiet_until and (
            len(state.suspicious) >= self.s.suspicious_queries or len(state.subs) >= self.s.distinct_subdomains
        ):
            rows = state.suspicious or [[now, item["id"]]]
            out.append(self.detection(rows, {"dns.registered_domain": group, "suspicious": len(state.suspicious),
                                             "subdomains": len(state.subs)}, moment=now))
            state.quiet_until = now + self.window
        return state, out

    def _prune(self, state: DnsState, now: int) -> None:
        horizon = now - self.window
        state.suspicious = [row for row in state.suspicious if row[0] > horizon]
        if state.subs and min(state.subs.values()) <= horizon:
            state.subs = {h: t for h, t in state.subs.items() if t > horizon}

    def next_timer(self, state: DnsState) -> int | None:
        return max(state.last_t + self.window, state.quiet_until)

    def on_timer(self, state: DnsState, now: int, group: str) -> tuple[DnsState | None, list[Detection]]:
        self._prune(state, now)
        return (state if state.subs or state.suspicious or now < state.quiet_until else None), []


# --- volume spikes per node / agency: EWMA baseline per hour of day -----------------------


@dataclass(slots=True)
class VolumeState:
    """Open bucket (start, count, last event id) and per-hour baselines ``slot -> [mean, dev, n]``."""

    bucket: int | None = None
    count: int = 0
    last_id: str = ""
    next_bucket: int | None = None  # first bucket not yet folded into the baseline
    slots: dict[str, list[float]] = field(default_factory=dict)
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "b": self.bucket, "c": self.count, "i": self.last_id, "n": self.next_bucket,
                "s": self.slots, "l": self.last_t}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> VolumeState:
        _check_version(snap, "volume")
        return cls(bucket=snap["b"], count=snap["c"], last_id=snap["i"], next_bucket=snap["n"],
                   slots={k: list(v) for k, v in snap["s"].items()}, last_t=snap["l"])


class VolumeSpike(Detector[VolumeState]):
    """Events per bucket far above a robust seasonal baseline (EWMA of mean and of |deviation|)."""

    name = "volume"
    state_type = VolumeState
    group_field: ClassVar[str] = "socflow.node.id"
    source_field: ClassVar[str] = "node"
    # Zero buckets folded in after a silence are capped: a day of them fills every slot.
    MAX_GAP_BUCKETS = 288

    def __init__(self, settings: VolumeSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.s = settings
        self.size = int(settings.bucket_s * 1000)
        self.ttl = int(settings.ttl_s * 1000)

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        value = fields.get(self.source_field)
        if not value:
            return None
        return str(value), {"t": fields["t"], "id": fields["id"]}

    def _fold(self, state: VolumeState, bucket: int, count: int, group: str) -> list[Detection]:
        slot = str(datetime.fromtimestamp(bucket / 1000, UTC).hour)
        mean, dev, seen = state.slots.get(slot, [float(count), 0.0, 0.0])
        spread = max(dev, self.s.min_deviation)
        limit = mean + self.s.threshold * spread
        out: list[Detection] = []
        if seen >= self.s.warmup_buckets and count >= self.s.min_count and count > limit:
            rows = [[bucket + self.size - 1, state.last_id or stable_id("volume", group, bucket)]]
            out.append(self.detection(rows, {self.group_field: group, "count": count, "baseline": round(mean, 1),
                                             "deviation": round(spread, 1), "bucket_s": self.size // 1000},
                                      moment=bucket + self.size - 1))
        # A spike is clamped before it enters the baseline, so an attack does not teach it.
        value = min(float(count), limit) if seen >= self.s.warmup_buckets else float(count)
        alpha = self.s.alpha
        state.slots[slot] = [mean + alpha * (value - mean), dev + alpha * (abs(value - mean) - dev), seen + 1]
        state.next_bucket = bucket + self.size
        return out

    def _close(self, state: VolumeState, group: str, upto: int) -> list[Detection]:
        """Fold the open bucket and the silent buckets before ``upto`` into the baseline."""
        out: list[Detection] = []
        if state.bucket is not None:
            out.extend(self._fold(state, state.bucket, state.count, group))
            state.bucket, state.count = None, 0
        if state.next_bucket is not None:
            gap = (upto - state.next_bucket) // self.size
            start = state.next_bucket if gap <= self.MAX_GAP_BUCKETS else upto - self.MAX_GAP_BUCKETS * self.size
            for empty in range(start, upto, self.size):
                out.extend(self._fold(state, empty, 0, group))
        return out

    def step(self, state: VolumeState, item: Item, group: str) -> tuple[VolumeState, list[Detection]]:
        now = int(item["t"])
        bucket = now - now % self.size
        out: list[Detection] = []
        if state.bucket is None or bucket > state.bucket:
            out = self._close(state, group, bucket)
            state.bucket, state.count = bucket, 0
        # An item older than the open bucket (late) counts into it: its own bucket is closed.
        state.count += int(item.get("c", 1))
        state.last_id = str(item["id"])
        state.last_t = max(state.last_t, now)
        return state, out

    def next_timer(self, state: VolumeState) -> int | None:
        if state.bucket is not None:
            return state.bucket + self.size
        return state.last_t + self.ttl

    def on_timer(self, state: VolumeState, now: int, group: str) -> tuple[VolumeState | None, list[Detection]]:
        out: list[Detection] = []
        if state.bucket is not None and now >= state.bucket + self.size:
            out = self._close(state, group, state.bucket + self.size)
        if state.bucket is None and now >= state.last_t + self.ttl:
            return None, out
        return state, out


class AgencyVolumeSpike(VolumeSpike):
    name = "volume_agency"
    group_field = "socflow.node.agency"
    source_field = "agency"
    needs = reads = ("agency",)


class NodeVolumeSpike(VolumeSpike):
    name = "volume_node"
    needs = reads = ("node",)


# --- first seen: a new process on a host, a new logon source of an admin account ----------


_SENT_LIMIT = 200_000  # (key, value) pairs a routing task remembers having sent


@dataclass(slots=True)
class FirstSeenState:
    """When the key was first seen (learning starts) and value hash -> last time seen."""

    first: int = 0
    values: dict[str, int] = field(default_factory=dict)
    last_t: int = 0

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "f": self.first, "x": self.values, "l": self.last_t}

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> FirstSeenState:
        _check_version(snap, "first_seen")
        return cls(first=snap["f"], values=dict(snap["x"]), last_t=snap["l"])


class FirstSeen(Detector[FirstSeenState]):
    """Alert on a value never seen for this key once the learning period is over."""

    state_type = FirstSeenState
    group_field: ClassVar[str] = ""
    value_field: ClassVar[str] = ""

    def __init__(self, settings: FirstSeenSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.s = settings
        self.learning = int(settings.learning_s * 1000)
        self.ttl = int(settings.ttl_s * 1000)
        self.refresh = int(settings.refresh_s * 1000)
        self._sent: dict[tuple[str, str], tuple[int, int]] = {}  # (group, value) -> earliest, latest sent

    def new_state(self) -> FirstSeenState:
        return FirstSeenState(first=-1)

    def unsent(self, group: str, value: str, moment: int) -> bool:
        """Whether to send a sighting: a value this task already sent for the key is sent
        again only when it is earlier than the earliest sent (it may be the key's true first
        sighting) or ``refresh_s`` of event time after the latest: the key's state then knows
        every value, with last-seen times at most ``refresh_s`` stale (they only order the
        ``max_values`` eviction and the ``ttl_s`` expiry). Without this every process start
        would reach keyed state."""
        if self.refresh <= 0:
            return True
        sent = self._sent
        pair = (group, value)
        known = sent.get(pair)
        if known is not None and known[0] <= moment < known[1] + self.refresh:
            return False
        if known is None:
            if len(sent) >= _SENT_LIMIT:
                sent.clear()  # forgetting only makes items be sent again: bounded, never wrong
            sent[pair] = (moment, moment)
        else:
            sent[pair] = (min(known[0], moment), max(known[1], moment))
        return True

    def step(self, state: FirstSeenState, item: Item, group: str) -> tuple[FirstSeenState, list[Detection]]:
        now = int(item["t"])
        if state.first < 0:
            state.first = now
        state.last_t = max(state.last_t, now)
        value = str(item["x"])
        digest = short_hash(value)
        out: list[Detection] = []
        if digest not in state.values and now >= state.first + self.learning:
            out.append(self.detection([[now, item["id"]]], {self.group_field: group, self.value_field: value}))
        state.values[digest] = now
        if len(state.values) > self.s.max_values:
            del state.values[min(state.values, key=state.values.__getitem__)]
        return state, out

    def next_timer(self, state: FirstSeenState) -> int | None:
        return state.last_t + self.ttl

    def on_timer(self, state: FirstSeenState, now: int, group: str) -> tuple[FirstSeenState | None, list[Detection]]:
        return (None if now >= state.last_t + self.ttl else state), []


class NewProcess(FirstSeen):
    name = "new_process"
    group_field = "host.name"
    value_field = "process.executable"
    needs = reads = ("process", "host")

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        process, host = fields.get("process"), fields.get("host")
        if not process or not host:
            return None
        group, value, moment = str(host).lower(), str(process).lower(), int(fields["t"])
        if not self.unsent(group, value, moment):
            return None
        return group, {"t": fields["t"], "id": fields["id"], "x": value}


class NewAdminSource(FirstSeen):
    name = "new_admin_source"
    group_field = "user.name"
    value_field = "source.ip"
    needs = reads = ("outcome", "user", "src")

    def __init__(self, settings: FirstSeenSettings, rule: RuleInfo) -> None:
        super().__init__(settings, rule)
        self.admins = re.compile(settings.admin_users) if settings.admin_users else None

    def route(self, fields: Fields) -> tuple[str, dict[str, Any]] | None:
        user = fields.get("user")
        if fields.get("outcome") != "success" or not user or not fields.get("src") or self.admins is None:
            return None
        if not self.admins.search(str(user)):
            return None
        group, value = str(user).lower(), str(fields["src"])
        if not self.unsent(group, value, int(fields["t"])):
            return None
        return group, {"t": fields["t"], "id": fields["id"], "x": value}
