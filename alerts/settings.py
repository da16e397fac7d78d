"""socflow's one settings model: every section, loaded once in ``main()`` and passed down.

Sources, later ones winning: field defaults, ``config/socflow.yaml`` (or ``--config FILE``),
environment variables ``SOCFLOW_<SECTION>__<FIELD>`` (e.g. ``SOCFLOW_ELASTICSEARCH__URL``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from deploy.settings import StackSettings
from detectors.ruletools.store import Selection
from detectors.settings import JobSettings
from ingest.settings import CollectorSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "socflow.yaml"


def default_data_dir() -> Path:
    return Path.home() / ".local" / "state" / "socflow"


class ElasticsearchSettings(BaseModel):
    """How to reach the alert store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field("http://127.0.0.1:9200", description="Elasticsearch base URL.")
    username: str | None = Field(None, description="Basic-auth user (production clusters).")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    api_key: SecretStr | None = Field(None, description="API key; preferred over basic auth.")
    ca_certs: Path | None = Field(None, description="CA bundle for https clusters.")
    index_prefix: str = Field("socflow-alerts", description="Alias name; indices are <prefix>-YYYY.MM.")
    request_timeout_s: float = Field(30.0, gt=0, description="Per-request timeout.")


class IndexerSettings(BaseModel):
    """How alerts move from the alert stream into Elasticsearch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bulk_size: int = Field(1000, ge=1, description="Documents per bulk request.")
    max_retries: int = Field(8, ge=0, description="Retries of a failed bulk request before giving up for now.")
    initial_backoff_s: float = Field(0.5, gt=0, description="First retry delay; doubles each retry.")
    max_backoff_s: float = Field(30.0, gt=0, description="Upper bound of the retry delay.")
    poll_interval_s: float = Field(0.25, gt=0, description="How often `socflow index --follow` looks for new alerts.")
    metrics_port: int = Field(9465, ge=0, le=65535, description="Prometheus port of the indexer; 0 disables.")


RuleLevel = Literal["informational", "low", "medium", "high", "critical"]
RuleStatus = Literal["stable", "test", "experimental", "deprecated", "unsupported"]


class RulesSettings(BaseModel):
    """Which rules of an imported release (``socflow rules import``) are enabled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statuses: tuple[RuleStatus, ...] = Field(
        ("stable", "test"), description="Rule statuses taken from a release (experimental: noisy, opt in).")
    min_level: RuleLevel = Field("low", description="Lowest rule level taken (after local level overrides).")
    logsources: tuple[dict[str, str], ...] = Field(
        (), description="Logsources taken, each a subset of {product, category, service}; empty: all.")

    def selection(self) -> Selection:
        return Selection(frozenset(self.statuses), self.min_level, tuple(self.logsources))


class EventStoreSettings(BaseModel):
    """How normalized events move from the spool into Elasticsearch (``socflow index events``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index_prefix: str = Field("socflow-events", description="Alias of the event indices <prefix>-YYYY.MM.DD.")
    deadletter_prefix: str = Field(
        "socflow-deadletters", description="Alias of the dead-letter indices <prefix>-YYYY.MM.DD.")
    bulk_size: int = Field(
        2000, ge=1, description="Events per bulk request (checked after each spool batch: may exceed it by one batch).")
    bulk_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="A bulk request is sent once its body reaches this many bytes.")
    max_retries: int = Field(8, ge=0, description="Retries of a failed bulk request before giving up for now.")
    initial_backoff_s: float = Field(0.5, gt=0, description="First retry delay; doubles each retry.")
    max_backoff_s: float = Field(30.0, gt=0, description="Upper bound of the retry delay.")
    poll_interval_s: float = Field(
        0.5, gt=0, description="How often `socflow index events --follow` looks for new segments.")
    metrics_port: int = Field(9466, ge=0, le=65535, description="Prometheus port of the event writer; 0 disables.")
    max_event_bytes: int = Field(
        1024 * 1024, ge=4096,
        description="An event larger than this (encoded) is stored with its long strings truncated "
        "(socflow.store.truncated names them).")
    truncate_strings_to: int = Field(
        16 * 1024, ge=256, description="Length (characters) strings of an oversized event are cut to.")
    refresh_interval: str = Field("5s", description="index.refresh_interval of event indices (see README figures).")
    codec: str = Field("best_compression", description="index.codec of event indices: default or best_compression.")
    number_of_shards: int = Field(1, ge=1, description="Primary shards per daily event index.")
    number_of_replicas: int = Field(0, ge=0, description="Replicas per event index (0 on a single node).")
    total_fields_limit: int = Field(
        1000, ge=100, description="index.mapping.total_fields.limit; dynamic fields past it are not indexed.")


class Settings(BaseSettings):
    """All of socflow's settings."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="SOCFLOW_", env_nested_delimiter="__", yaml_file=None
    )
    config_file: ClassVar[Path | None] = DEFAULT_CONFIG

    data_dir: Path = Field(default_factory=default_data_dir, description="Spool, alert stream, checkpoints, state.")
    collector: CollectorSettings = Field(default_factory=CollectorSettings)  # type: ignore[arg-type]
    job: JobSettings = Field(default_factory=JobSettings)  # type: ignore[arg-type]
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)  # type: ignore[arg-type]
    indexer: IndexerSettings = Field(default_factory=IndexerSettings)  # type: ignore[arg-type]
    event_store: EventStoreSettings = Field(default_factory=EventStoreSettings)  # type: ignore[arg-type]
    stack: StackSettings = Field(default_factory=StackSettings)  # type: ignore[arg-type]
    rules: RulesSettings = Field(default_factory=RulesSettings)  # type: ignore[arg-type]

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def alert_stream_dir(self) -> Path:
        return self.data_dir / "alert-stream"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def rule_store_dir(self) -> Path:
        """Imported rule releases, local tuning and the active rule set (``socflow rules import``)."""
        return self.data_dir / "rules"

    @property
    def deadletter_dir(self) -> Path:
        return self.data_dir / "deadletter"

    def resolve(self, path: Path) -> Path:
        """Relative paths in the config are relative to the repository root."""
        return path if path.is_absolute() else REPO_ROOT / path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_file is not None and cls.config_file.exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cls.config_file))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_file`` (default ``config/socflow.yaml``), env and overrides."""
    settings_type = type("LoadedSettings", (Settings,), {"config_file": config_file or DEFAULT_CONFIG})
    loaded: Settings = settings_type(**overrides)
    return loaded
