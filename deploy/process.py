"""Process plumbing shared by the service scripts: pid files, ports, users, waiting, logs.

Services are plain daemons identified by a pid file in their run dir. A pid alone is not
trusted (pids are reused after a reboot or a crash): the process must still carry a marker
(its run dir) on its command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.errors import StackError, ToolMissingError

log = logging.getLogger("socflow.deploy")


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Structured log line: a lowercase event name followed by key=value pairs."""
    parts = [event] + [f"{key}={value}" for key, value in fields.items() if value is not None]
    log.log(level, " ".join(parts))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_root() -> bool:
    return os.geteuid() == 0


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid: int) -> None:
    # A service started by this very process (a test session) stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if ``pid`` runs, is not a zombie, and (if given) has ``marker`` in its command line."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in {"Z", "X"}:
        return False
    return marker is None or marker in cmdline


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still our service."""
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def stop_pid(pid: int, timeout: float, *, name: str) -> bool:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns True if it had to kill."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            log_event("service_stopped", service=name, pid=pid, signal="TERM")
            return False
        time.sleep(0.2)
    log_event("service_kill", logging.WARNING, service=name, pid=pid, after_s=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5,
               abort: Callable[[], str | None] | None = None) -> bool:
    """Poll ``predicate`` until true or ``timeout``; ``abort`` returning a reason stops early."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if abort is not None and (reason := abort()):
            raise StackError(reason)
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file, or a note that it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def ensure_service_user(name: str) -> None:
    """Create the system user ``name`` (and its group) when missing. Root only."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name],
        capture_output=True, text=True, check=False)
    if result.returncode not in {0, 9}:  # 9: created meanwhile by someone else
        raise StackError(f"cannot create service user {name}: {result.stderr.strip()}")
    log_event("service_user_created", user=name)


def service_user(name: str) -> str | None:
    """The user services run as: ``name`` when we are root (created if needed), else ourselves."""
    if not is_root():
        return None
    ensure_service_user(name)
    return name


def as_user(user: str | None) -> list[str]:
    """Command prefix that drops to ``user`` in-process (setpriv execs, so the pid stays the service's)."""
    if user is None:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ToolMissingError("setpriv (util-linux) is needed to run services as a non-root user")
    return [setpriv, f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def chown_tree(path: Path, user: str | None) -> None:
    """Give ``path`` (recursively) to ``user``; nothing to do when running as self."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for item in [root, *(os.path.join(root, name) for name in dirs + files)]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(item, entry.pw_uid, entry.pw_gid)


def spawn(cmd: Sequence[str], *, env: Mapping[str, str], log_path: Path, pid_path: Path,
          cwd: Path) -> int:
    """Start a daemon in its own session, output to ``log_path``, pid recorded in ``pid_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            list(cmd), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    pid_path.write_text(f"{process.pid}\n")
    return process.pid


def http_json(url: str, timeout: float = 5.0, method: str = "GET", body: Any = None) -> Any:
    """One HTTP request to a local service; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (local http only)
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def http_ok(url: str, timeout: float = 2.0) -> Any | None:
    """The JSON answer of ``url``, or None while the service is not answering."""
    try:
        return http_json(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class ServiceStatus:
    """What ``socflow stack status`` prints for one service.

    ``state`` is ``running`` (ours, healthy), ``unhealthy`` (ours, not answering yet),
    ``external`` (something not started by socflow answers on the port) or ``stopped``.
    """

    service: str
    state: str
    url: str
    pid: int | None = None
    version: str | None = None
    health: str | None = None
    detail: str | None = None

    @property
    def up(self) -> bool:
        """Usable: ours and running, or someone else's that answers as this service."""
        return self.state == "running" or (self.state == "external" and self.health is not None)

    def line(self) -> str:
        fields = {"state": self.state, "version": self.version, "pid": self.pid, "url": self.url,
                  "health": self.health, "detail": self.detail}
        return self.service + " " + " ".join(f"{key}={value}" for key, value in fields.items()
                                              if value is not None)
