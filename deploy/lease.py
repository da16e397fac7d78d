"""Share one service instance between concurrent users (test sessions) safely.

Several engineers run the test suite on one machine at the same time, and all their sessions
use the same test instance (same ports). Without coordination, the session that started a
service would stop it at its end while another session still uses it. So:

- starting and stopping happen under an exclusive ``flock`` per service;
- each user holds a lease file named after its pid; leases of dead pids are ignored;
- a service started through :func:`shared_service` carries a marker file, and the last lease
  holder to leave stops it; a service that was already up without a marker (a developer's
  ``socflow stack up --test-instance``) is never stopped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from deploy.process import ServiceStatus, locked, log_event, pid_alive
from deploy.settings import StackSettings

__all__ = ["locked", "shared_service"]


def _live_leases(lease_dir: Path) -> list[Path]:
    live = []
    for lease in lease_dir.glob("*"):
        if lease.name.isdigit() and pid_alive(int(lease.name)):
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)  # its holder died without cleaning up
    return live


@contextlib.contextmanager
def shared_service(
    settings: StackSettings,
    name: str,
    status: Callable[[StackSettings], ServiceStatus],
    start: Callable[[StackSettings], ServiceStatus],
    stop: Callable[[StackSettings], bool],
    *,
    reset: Callable[[StackSettings], None] | None = None,
) -> Iterator[ServiceStatus]:
    """Use service ``name``: start it if nobody runs it, stop it when the last user leaves.

    ``reset`` (e.g. wipe data) runs only when this call is the one that starts the service.
    Exceptions from ``start`` propagate (the lease is released first).
    """
    base = settings.effective_run_dir / "leases"
    lock = base / f"{name}.lock"
    lease_dir = base / name
    marker = base / f"{name}.started-by-lease"
    lease = lease_dir / str(os.getpid())
    with locked(lock):
        lease_dir.mkdir(parents=True, exist_ok=True)
        current = status(settings)
        if current.up:
            if not _live_leases(lease_dir) and not marker.exists():
                log_event("service_reused", service=name, url=current.url, owner="external")
        else:
            try:
                if reset is not None and current.state == "stopped":
                    reset(settings)
                current = start(settings)
            except BaseException:
                marker.unlink(missing_ok=True)
                raise
            marker.touch()
        lease.touch()
    try:
        yield current
    finally:
        with locked(lock):
            lease.unlink(missing_ok=True)
            if marker.exists() and not _live_leases(lease_dir):
                stop(settings)
                marker.unlink(missing_ok=True)
            else:
                log_event("service_left_running", service=name, url=current.url,
                          users=len(_live_leases(lease_dir)), ours=marker.exists())
