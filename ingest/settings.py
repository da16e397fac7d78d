"""Typed settings of the collectors (one section of socflow's settings model)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FileSourceSettings(BaseModel):
    """One kind of log file the files collector reads when run without paths (``collector.files``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="What these files are, for people and logs (e.g. 'bind queries on dc-dns01').")
    paths: list[str] = Field(min_length=1, description="Files, directories or glob patterns (/var/log/named/*.log).")
    format: str = Field("auto", description="Parser name (socflow sources lists them); auto sniffs each file.")
    timezone: str = Field(
        "UTC", description="Zone of the time stamps that carry none (BSD syslog, BIND, Windows DNS, Zimbra).")
    host: str | None = Field(
        None, description="host.name for events whose lines do not name their host (a BIND or Windows DNS "
                          "log file), so the asset inventory finds the node that wrote them.")
    options: dict[str, str] = Field(
        default_factory=dict, description="Format-specific options, passed to parsers that take them.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class CollectorSettings(BaseModel):
    """How collectors batch, commit and expose metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(
        1000, ge=1, le=10_000,
        description="Events per spool record: one JVM-Python crossing, and one keyed record per key, per batch.")
    commit_interval_s: float = Field(
        0.5, gt=0, description="Seconds between spool commits; bounds latency and loss window.")
    commit_events: int = Field(50_000, ge=1, description="Commit early once this many events are buffered.")
    poll_interval_s: float = Field(0.25, gt=0, description="How often a tailing collector looks for new data.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus port of collectors; 0 disables.")
    assets_path: Path = Field(Path("config/assets.yaml"), description="Asset inventory for socflow.node.")
    logsources_path: Path = Field(
        Path("config/logsources.yaml"), description="Windows channel/event id to Sigma logsource table.")
    syslog_udp: str | None = Field("0.0.0.0:5514", description="HOST:PORT of the syslog UDP listener; null disables.")
    syslog_udp_buffer_bytes: int = Field(
        8 * 1024 * 1024, ge=4096,
        description="Kernel receive buffer of the syslog UDP listener; datagrams arriving while it is full are "
                    "dropped by the kernel and counted as dropped.")
    syslog_tcp: str | None = Field("0.0.0.0:5514", description="HOST:PORT of the syslog TCP listener; null disables.")
    syslog_tls: str | None = Field(None, description="HOST:PORT of the syslog TLS listener (e.g. 0.0.0.0:6514).")
    syslog_tls_cert: Path | None = Field(None, description="PEM certificate (chain) of the TLS listener.")
    syslog_tls_key: Path | None = Field(None, description="PEM private key of the TLS listener.")
    syslog_timezone: str = Field(
        "UTC", description="Zone of RFC 3164 timestamps, which carry none (e.g. Asia/Ho_Chi_Minh).")
    sensor_bpf: str = Field("ip or ip6", description="BPF filter of the network sensor.")
    sensor_idle_timeout_s: float = Field(60.0, gt=0, description="A flow idle this long is exported and forgotten.")
    sensor_active_timeout_s: float = Field(
        300.0, gt=0, description="A long-lived flow is exported (and continued) after this long.")
    sensor_max_flows: int = Field(
        200_000, ge=100, description="Flow table bound; when full the oldest flows are exported early.")
    files: list[FileSourceSettings] = Field(
        default_factory=list,
        description="Log files by source: what `socflow collect files` reads when given no paths, each glob "
                    "with its format, time zone, host and options.")
    kafka_linger_ms: int = Field(50, ge=0, description="Kafka producer linger (batching delay).")
    kafka_delivery_timeout_s: float = Field(
        30.0, gt=0, description="How long a Kafka commit waits for delivery reports before buffering to disk.")
