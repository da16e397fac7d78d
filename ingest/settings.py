"""Typed settings of the collectors (one section of socflow's settings model)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class CollectorSettings(BaseModel):
    """How collectors batch, commit and expose metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(200, ge=1, le=10_000, description="Events per spool record (one JVM-Python crossing).")
    commit_interval_s: float = Field(
        1.0, gt=0, description="Seconds between spool commits; bounds latency and loss window.")
    commit_events: int = Field(50_000, ge=1, description="Commit early once this many events are buffered.")
    poll_interval_s: float = Field(0.5, gt=0, description="How often a tailing collector looks for new data.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus port of collectors; 0 disables.")
    assets_path: Path = Field(Path("config/assets.yaml"), description="Asset inventory for socflow.node.")
    logsources_path: Path = Field(
        Path("config/logsources.yaml"), description="Windows channel/event id to Sigma logsource table.")
