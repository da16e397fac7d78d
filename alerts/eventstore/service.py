"""The event writer as a background process of ``socflow stack`` (``up --event-writer``, ``down``, ``status``).

It is ``socflow index events --follow --metrics`` in its own session, output in
``<data-dir>/event-store/writer.log``, pid in ``<data-dir>/event-store/writer.pid``; a pid is
trusted only while its command line still names this data dir (pids are reused).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy.process import ServiceStatus, running_pid, spawn, stop_pid, wait_until

SERVICE = "event-writer"


def _paths(data_dir: Path) -> tuple[Path, Path]:
    base = data_dir / "event-store"
    return base / "writer.pid", base / "writer.log"


def _marker(data_dir: Path) -> str:
    return f"--data-dir={data_dir}"


def status(data_dir: Path, elasticsearch_url: str, metrics_port: int) -> ServiceStatus:
    pid_path, log_path = _paths(data_dir)
    pid = running_pid(pid_path, _marker(data_dir))
    url = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else elasticsearch_url
    if pid is None:
        return ServiceStatus(SERVICE, "stopped", url)
    return ServiceStatus(SERVICE, "running", url, pid=pid, detail=f"log={log_path}")


def start(data_dir: Path, elasticsearch_url: str, metrics_port: int, *, config: Path | None = None) -> ServiceStatus:
    """Start the writer unless it runs (idempotent); it writes to ``elasticsearch_url``."""
    current = status(data_dir, elasticsearch_url, metrics_port)
    if current.state == "running":
        return current
    pid_path, log_path = _paths(data_dir)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "alerts.cli", _marker(data_dir)]
    if config is not None:
        command += ["--config", str(config)]
    command += ["index", "events", "--follow", "--metrics"]
    env = {**os.environ, "SOCFLOW_ELASTICSEARCH__URL": elasticsearch_url}
    pid = spawn(command, env=env, log_path=log_path, pid_path=pid_path, cwd=Path(__file__).resolve().parents[2])
    wait_until(lambda: running_pid(pid_path, _marker(data_dir)) is not None, 10.0, interval=0.1)
    return ServiceStatus(SERVICE, "running", current.url, pid=pid, detail=f"log={log_path}")


def stop(data_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop the writer if it runs (SIGTERM, then SIGKILL after ``timeout_s``); True if it ran."""
    pid_path, _log = _paths(data_dir)
    pid = running_pid(pid_path, _marker(data_dir))
    if pid is None:
        return False
    stop_pid(pid, timeout_s, name=SERVICE)
    pid_path.unlink(missing_ok=True)
    return True
