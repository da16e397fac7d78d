"""Typed settings of the Flink job (one section of socflow's settings model)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class JobSettings(BaseModel):
    """How the detection job runs on Flink."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_dirs: tuple[Path, ...] = Field((Path("rules"),), description="Sigma rule directories loaded by the job.")
    parallelism: int = Field(1, ge=1, le=256, description="Flink parallelism of every operator.")
    execution_mode: Literal["thread", "process"] = Field(
        "thread", description="PyFlink Python execution mode; thread is several times faster.")
    checkpoint_interval_ms: int = Field(1000, ge=100, description="Checkpoint interval; alerts commit on checkpoints.")
    monitor_interval_s: float = Field(0.5, gt=0, description="How often the job looks for new spool segments.")
    spool_prune_after_s: float = Field(
        600, ge=0,
        description="Delete a spool segment this long after the job committed it as read to its end (a checkpoint "
                    "later, no restore reads it again); the wait leaves room to restore an older retained "
                    "checkpoint. 0 keeps every segment.")
    java_home: Path | None = Field(None, description="JDK for Flink; default: the one deploy/ finds (Java 17).")
    dedup_window_s: int = Field(
        3600, ge=1, description="Detections of one rule on one entity within this window become one alert.")
    dedup_entity_fields: tuple[str, ...] = Field(
        ("source.ip", "host.name", "user.name"),
        description="The first of these event fields present names the entity of a single-event alert.")
    suppressions_path: Path = Field(Path("config/suppressions.yaml"), description="Expected detections to drop.")
    reload_interval_s: float = Field(
        5.0, gt=0, description="How often the job looks for a newly published rule set (socflow rules publish).")
    flink_config: dict[str, str] = Field(
        default_factory=dict, description="More Flink configuration for the job (key: value), applied last.")
    flink_metrics_port: int = Field(9250, ge=0, le=65535, description="Flink Prometheus reporter port; 0 disables.")
