"""Typed settings of the local stack (one section of socflow's settings model)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "socflow"


class StackSettings(BaseModel):
    """Where the pinned services are cached and how they run on this machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cache_dir: Path = Field(default_factory=default_cache_dir, description="Downloads (Maven artifacts), outside the repo.")
    run_dir: Path | None = Field(
        None, description="Service homes, data and logs; default /var/lib/socflow as root, else cache_dir/run.")
    elasticsearch_version: str = Field("8.19.21", description="Pinned Elasticsearch (integ-test-zip on Maven Central).")
    elasticsearch_port: int = Field(9200, ge=1, le=65535, description="HTTP port on 127.0.0.1.")
    elasticsearch_heap: str = Field("1g", description="JVM heap of the local Elasticsearch.")
    service_user: str = Field("socflow", description="Non-root user that runs Elasticsearch and Kafka when started as root.")
    java_home: Path | None = Field(None, description="JDK for Elasticsearch, Kafka and Flink; default: a JDK 17 found on the machine.")
    kafka_version: str = Field("4.1.1", description="Pinned Kafka broker (Maven Central jars, KRaft mode).")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Kafka broker port on 127.0.0.1.")
