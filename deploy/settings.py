"""Typed settings of the local stack (one section of socflow's settings model).

Two instances matter: the developer's (``socflow stack up``, default ports 9200/9092/8081) and the
test suite's (:meth:`StackSettings.for_tests`, ports 19200/19092/18081 and its own run dir), so
that a test session never stops or wipes the stack a developer started by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# Root's home is 0700, so a service user could not read anything under it: as root the services
# live under /var/lib instead.
ROOT_RUN_DIR = Path("/var/lib/socflow")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "socflow"


class StackSettings(BaseModel):
    """Where the pinned services are cached and how they run on this machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Downloads (Maven artifacts), outside the repo.")
    run_dir: Path | None = Field(
        None,
        description="Service homes, data and logs; default /var/lib/socflow as root, else cache_dir/run.",
    )
    elasticsearch_version: str = Field(
        "8.19.21", description="Pinned Elasticsearch (integ-test-zip on Maven Central).")
    elasticsearch_port: int = Field(9200, ge=1, le=65535, description="HTTP port on 127.0.0.1.")
    elasticsearch_transport_port: int = Field(
        9300, ge=1, le=65535, description="Transport port on 127.0.0.1 (single node, but ES still binds it).")
    elasticsearch_heap: str = Field("1g", description="JVM heap of the local Elasticsearch.")
    service_user: str = Field(
        "socflow", description="Non-root user that runs Elasticsearch and Kafka when started as root.")
    java_home: Path | None = Field(
        None, description="JDK for Elasticsearch, Kafka and Flink; default: a JDK 17 found on the machine.")
    kafka_version: str = Field("4.1.1", description="Pinned Kafka broker (Maven Central jars, KRaft mode).")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Kafka broker port on 127.0.0.1.")
    kafka_controller_port: int = Field(
        9093, ge=1, le=65535, description="KRaft controller port on 127.0.0.1.")
    kafka_heap: str = Field("512m", description="JVM heap of the local Kafka broker.")
    flink_kafka_connector_version: str = Field(
        "5.0.0-2.2", description="flink-sql-connector-kafka matching the PyFlink 2.2 runtime.")
    flink_rest_port: int = Field(
        8081, ge=1, le=65535, description="REST/web port of the standalone Flink cluster.")
    flink_rpc_port: int = Field(
        6123, ge=1, le=65535, description="JobManager RPC port of the standalone cluster.")
    flink_taskmanagers: int = Field(2, ge=1, le=8, description="TaskManagers the standalone cluster starts.")
    flink_slots_per_taskmanager: int = Field(2, ge=1, description="Task slots per TaskManager.")
    flink_jobmanager_memory: str = Field("1024m", description="jobmanager.memory.process.size.")
    flink_taskmanager_memory: str = Field(
        "2048m", description="taskmanager.memory.process.size (includes the Python workers' managed memory).")
    flink_metrics_ports: str = Field(
        "9250-9260", description="Port range of the Prometheus reporter (one port per Flink process).")
    start_timeout_s: float = Field(
        300.0, gt=0, description="How long `up` waits for a service to become healthy (2 shared cores: slow).")
    stop_timeout_s: float = Field(30.0, gt=0, description="Grace period after SIGTERM before SIGKILL.")

    @property
    def effective_run_dir(self) -> Path:
        """``run_dir`` if set, else /var/lib/socflow as root, else ``cache_dir/run``."""
        if self.run_dir is not None:
            return self.run_dir
        if os.geteuid() == 0:
            return ROOT_RUN_DIR
        return self.cache_dir / "run"

    def service_dir(self, service: str) -> Path:
        """Where a service keeps its home, config, data, logs and pid file."""
        return self.effective_run_dir / service

    def start_lock(self, service: str) -> Path:
        """Lock file held while a service is started or stopped (one starter at a time)."""
        return self.effective_run_dir / ".locks" / f"{service}.lock"

    def for_tests(self) -> StackSettings:
        """The same stack on test ports and in its own run dir (never the developer's instance)."""
        base = self.effective_run_dir
        return self.model_copy(
            update={
                "run_dir": base.with_name(base.name + "-test"),
                "elasticsearch_port": 19200,
                "elasticsearch_transport_port": 19300,
                "kafka_port": 19092,
                "kafka_controller_port": 19093,
                "flink_rest_port": 18081,
                "flink_rpc_port": 16123,
                "flink_metrics_ports": "19250-19260",
                # Smaller than a developer's: the suite shares the machine with everything else.
                "elasticsearch_heap": "512m",
                "flink_taskmanager_memory": "1536m",
            }
        )
