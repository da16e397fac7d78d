"""Typed thresholds of the stateful stage, loaded from ``config/detectors.yaml``.

One frozen model, every field described, loaded once by the caller and passed down (the
Flink operator receives it pickled). Unknown keys are errors so a typo never silently
leaves a default in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.errors import DetectorError

# libyaml's safe loader when built: the same documents, read at every start-up 10x as fast.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventTimeSettings(_Frozen):
    out_of_orderness_s: float = Field(default=5, ge=0, description="Watermark lag behind the max event time seen.")
    allowed_lateness_s: float = Field(
        default=60, ge=0, description="Late items younger than this (behind the watermark) are still applied.")
    timer_resolution_ms: int = Field(
        default=1000, ge=1, description="Timers releasing buffered items are rounded up to this.")
    expiry_resolution_ms: int = Field(
        default=60_000, ge=1, description="Window-close and state-expiry timers are rounded up to this.")
    idle_source_s: float = Field(
        default=10, gt=0, description="An input silent this long stops holding the watermark back.")

    @property
    def out_of_orderness_ms(self) -> int:
        return int(self.out_of_orderness_s * 1000)

    @property
    def allowed_lateness_ms(self) -> int:
        return int(self.allowed_lateness_s * 1000)


class CorrelationSettings(_Frozen):
    max_items_per_group: int = Field(
        default=10_000, ge=1, description="Items kept per correlation group (oldest dropped).")


class Window(_Frozen):
    seconds: float = Field(gt=0, description="Window length in event time.")
    distinct: int = Field(ge=1, description="Distinct values within the window that raise an alert.")


class DetectorBase(_Frozen):
    enabled: bool = Field(default=True, description="Run this detector.")
    level: str = Field(default="medium", description="Alert level of this detector's detections.")


class DistinctSettings(DetectorBase):
    windows: tuple[Window, ...] = Field(
        default=(Window(seconds=60, distinct=20),), min_length=1,
        description="Alert when any window holds this many values.")
    internal_only: bool = Field(default=False, description="Count only private/internal destination addresses.")


class BruteForceSettings(DetectorBase):
    window_s: float = Field(default=600, gt=0, description="Window for failures of one account.")
    failures: int = Field(default=10, ge=1, description="Failures of one account in the window that raise an alert.")
    success_level: str = Field(default="high", description="Level when a success follows the failures.")


class SpraySettings(DetectorBase):
    window_s: float = Field(default=1800, gt=0, description="Window for failures from one source.")
    distinct_users: int = Field(
        default=8, ge=2, description="Distinct failed accounts from one source that raise an alert.")


class BeaconSettings(DetectorBase):
    min_events: int = Field(default=8, ge=3, description="Connections needed before regularity is judged.")
    history: int = Field(default=16, ge=3, description="Most recent connection times kept per pair.")
    max_cv: float = Field(default=0.25, gt=0, description="Max coefficient of variation of the intervals (jitter).")
    min_interval_s: float = Field(default=10, ge=0, description="Shorter median intervals are bursts, not beacons.")
    max_interval_s: float = Field(default=3600, gt=0, description="Longer median intervals are not judged.")
    merge_within_s: float = Field(default=2, ge=0, description="Connections this close count as one check-in.")
    cooldown_s: float = Field(default=21600, ge=0, description="Quiet time after an alert for the same pair.")
    ignore_ports: tuple[int, ...] = Field(
        default=(), description="Destination ports periodic by design (NTP, SNMP, monitoring agents).")


class DnsTunnelSettings(DetectorBase):
    window_s: float = Field(default=600, gt=0, description="Window per registered domain.")
    min_label_length: int = Field(
        default=24, ge=1, description="A query is suspicious from this subdomain label length ...")
    min_entropy: float = Field(
        default=3.5, ge=0, description="... and this Shannon entropy (bits/char) of its subdomain.")
    suspicious_queries: int = Field(
        default=10, ge=1, description="Suspicious queries per domain in the window for an alert.")
    distinct_subdomains: int = Field(
        default=200, ge=1, description="Distinct subdomains per domain in the window for an alert.")


class VolumeSettings(DetectorBase):
    bucket_s: float = Field(default=300, gt=0, description="Counting bucket length.")
    alpha: float = Field(
        default=0.2, gt=0, le=1, description="EWMA weight of a new bucket in its hour-of-day baseline.")
    threshold: float = Field(default=6.0, gt=0, description="Deviations above the baseline that make a spike.")
    min_count: int = Field(default=50, ge=0, description="Buckets below this count never alert.")
    warmup_buckets: int = Field(
        default=3, ge=1, description="Buckets a seasonal slot must have seen before it alerts.")
    min_deviation: float = Field(default=5.0, gt=0, description="Floor of the deviation estimate (quiet nodes).")
    ttl_s: float = Field(default=604_800, gt=0, description="Baseline of a key silent this long is dropped.")


class FirstSeenSettings(DetectorBase):
    learning_s: float = Field(
        default=86400, ge=0,
        description="Event time after the first sighting during which values are learnt silently.")
    max_values: int = Field(default=4096, ge=1, description="Values remembered per key (least recent forgotten).")
    ttl_s: float = Field(default=2_592_000, gt=0, description="State of a key silent this long is dropped.")
    admin_users: str = Field(default="", description="Regex of admin account names (new_admin_source only).")
    refresh_s: float = Field(
        default=3600, ge=0,
        description="A value a routing task already sent for a key is sent to keyed state again only after "
        "this much event time (0: every sighting is sent).")


class DetectorSettings(_Frozen):
    portscan: DistinctSettings = Field(
        default=DistinctSettings(), description="Distinct destination ports per source.")
    hostscan: DistinctSettings = Field(
        default=DistinctSettings(internal_only=True),
        description="Distinct destination hosts per source.")
    bruteforce: BruteForceSettings = Field(
        default=BruteForceSettings(), description="Failures of one account.")
    spray: SpraySettings = Field(
        default=SpraySettings(), description="Failures over many accounts from one source.")
    beacon: BeaconSettings = Field(
        default=BeaconSettings(), description="Regular connections source to destination.")
    dns_tunnel: DnsTunnelSettings = Field(
        default=DnsTunnelSettings(), description="Tunnels over DNS per domain.")
    volume_node: VolumeSettings = Field(
        default=VolumeSettings(), description="Event volume spikes per node.")
    volume_agency: VolumeSettings = Field(
        default=VolumeSettings(), description="Event volume spikes per agency.")
    new_process: FirstSeenSettings = Field(
        default=FirstSeenSettings(), description="New process on a host.")
    new_admin_source: FirstSeenSettings = Field(
        default=FirstSeenSettings(), description="New logon source of an admin account.")


class StatefulSettings(_Frozen):
    """Everything ``config/detectors.yaml`` holds."""

    event_time: EventTimeSettings = Field(default=EventTimeSettings(), description="Watermarks and lateness.")
    correlation: CorrelationSettings = Field(default=CorrelationSettings(), description="Correlation limits.")
    detectors: DetectorSettings = Field(default=DetectorSettings(), description="Anomaly detector thresholds.")

    @classmethod
    def load(cls, path: Path | str = Path("config/detectors.yaml")) -> StatefulSettings:
        source = str(path)
        try:
            data: Any = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError) as error:
            raise DetectorError(f"cannot read detector settings: {error}", source=source) from error
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise DetectorError(f"invalid detector settings: {error}", source=source) from error
