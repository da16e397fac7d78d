"""A local single-node Elasticsearch from the pinned integ-test-zip on Maven Central.

Layout under ``<run_dir>/elasticsearch``: ``home-<version>`` (unpacked distribution, read-only
for the service), ``config`` (generated), ``data``, ``logs``, ``tmp`` and ``elasticsearch.pid``.
Elasticsearch refuses to run as root, so as root everything but the home belongs to the service
user and the server is started through setpriv as that user.

This distribution is minimal: no ``GET /``, no painless, no ingest pipelines, no data streams,
no ILM; security is switched off explicitly because the x-pack-security module is present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

from deploy.errors import StackError
from deploy.java import find_java_home
from deploy.maven import fetch_artifact
from deploy.process import (
    ServiceStatus,
    as_user,
    chown_tree,
    http_json,
    http_ok,
    locked,
    log_event,
    port_open,
    running_pid,
    service_user,
    stop_pid,
    tail,
    wait_until,
)
from deploy.settings import StackSettings

SERVICE = "elasticsearch"
CLUSTER_NAME = "socflow-local"


def elasticsearch_url(settings: StackSettings) -> str:
    """Base URL of the local Elasticsearch (no trailing slash)."""
    return f"http://127.0.0.1:{settings.elasticsearch_port}"


def _paths(settings: StackSettings) -> dict[str, Path]:
    base = settings.service_dir(SERVICE)
    return {
        "base": base,
        "home": base / f"home-{settings.elasticsearch_version}",
        "config": base / "config",
        "data": base / "data",
        "logs": base / "logs",
        "tmp": base / "tmp",
        "pid": base / "elasticsearch.pid",
        "startup_log": base / "logs" / "startup.log",
        "server_log": base / "logs" / f"{CLUSTER_NAME}.log",
    }


def _marker(settings: StackSettings) -> str:
    # The server's command line names its home (unique per run dir), not its config dir.
    return f"-Des.path.home={_paths(settings)['home']}"


def log_tail(settings: StackSettings, lines: int = 40) -> str:
    """The end of the server log (or of the launcher's output when the server never logged)."""
    paths = _paths(settings)
    server = paths["server_log"]
    text = tail(server, lines) if server.exists() else ""
    startup = tail(paths["startup_log"], lines) if paths["startup_log"].exists() else ""
    return "\n".join(part for part in (startup, text) if part) or f"(no logs under {paths['logs']})"


def fetch_distribution(settings: StackSettings) -> Path:
    """The checksum-verified zip in the cache (fetched with Maven on first use)."""
    return fetch_artifact(
        f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{settings.elasticsearch_version}:zip",
        settings.cache_dir)


def _extract(archive: Path, dest: Path) -> None:
    """Unzip keeping the Unix modes (zipfile alone drops the executable bits of bin/)."""
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            # Strip the top folder (elasticsearch-<version>/) and refuse paths escaping dest.
            relative = Path(*Path(info.filename).parts[1:])
            if not relative.parts or ".." in relative.parts or relative.is_absolute():
                continue
            target = partial / relative
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            mode = (info.external_attr >> 16) & 0o777
            target.chmod(mode or 0o644)
    (partial / "plugins").mkdir(exist_ok=True)
    for path in [partial, *partial.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    partial.rename(dest)


def install(settings: StackSettings) -> Path:
    """Fetch (cached) and unpack the distribution into the run dir; returns its home."""
    paths = _paths(settings)
    home = paths["home"]
    if not (home / "bin" / "elasticsearch").exists():
        archive = fetch_distribution(settings)
        paths["base"].mkdir(parents=True, exist_ok=True)
        paths["base"].chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)
        _extract(archive, home)
        log_event("elasticsearch_unpacked", home=home, version=settings.elasticsearch_version)
    return home


def _write_config(settings: StackSettings, user: str | None) -> None:
    paths = _paths(settings)
    config = paths["config"]
    (config / "jvm.options.d").mkdir(parents=True, exist_ok=True)
    for name in ("data", "logs", "tmp"):
        paths[name].mkdir(parents=True, exist_ok=True)
    dist_config = paths["home"] / "config"
    for source in dist_config.iterdir():
        target = config / source.name
        if source.is_file() and source.name not in {"elasticsearch.yml", "jvm.options"} and not target.exists():
            shutil.copyfile(source, target)
    logs = paths["logs"]
    # The distribution's jvm.options writes gc.log and crash files relative to the working dir.
    jvm = (dist_config / "jvm.options").read_text()
    jvm = jvm.replace("file=gc.log", f"file={logs}/gc.log").replace(
        "-XX:ErrorFile=hs_err_pid%p.log", f"-XX:ErrorFile={logs}/hs_err_pid%p.log")
    (config / "jvm.options").write_text(jvm)
    heap = settings.elasticsearch_heap
    (config / "jvm.options.d" / "socflow.options").write_text(
        f"-Xms{heap}\n-Xmx{heap}\n-XX:HeapDumpPath={logs}\n")
    (config / "elasticsearch.yml").write_text(
        "# Generated by socflow (deploy/elasticsearch.py); edits are overwritten on `socflow stack up`.\n"
        f"cluster.name: {CLUSTER_NAME}\n"
        "node.name: socflow-1\n"
        f"path.data: {paths['data']}\n"
        f"path.logs: {logs}\n"
        "network.host: 127.0.0.1\n"
        f"http.port: {settings.elasticsearch_port}\n"
        f"transport.port: {settings.elasticsearch_transport_port}\n"
        "discovery.type: single-node\n"
        # The x-pack-security module is in this zip; without this line ES 8 would auto-enable
        # TLS and passwords on first start.
        "xpack.security.enabled: false\n"
        # Deleting indices by wildcard is an operator mistake a SOC cannot afford.
        "action.destructive_requires_name: true\n"
        # Developer disks are often >90% full; keep the guard but as absolute free space.
        "cluster.routing.allocation.disk.watermark.low: 1gb\n"
        "cluster.routing.allocation.disk.watermark.high: 512mb\n"
        "cluster.routing.allocation.disk.watermark.flood_stage: 256mb\n"
    )
    chown_tree(paths["base"] / "config", user)
    for name in ("data", "logs", "tmp"):
        chown_tree(paths[name], user)
    if user is not None:
        # The service's HOME; the unpacked home-<version> below stays root's (read-only binaries).
        shutil.chown(paths["base"], user, user)


def _health(settings: StackSettings) -> dict[str, object] | None:
    """The cluster health document, whatever its colour; None while nothing answers."""
    answer = http_ok(f"{elasticsearch_url(settings)}/_cluster/health")
    return answer if isinstance(answer, dict) and "status" in answer else None


def _usable(settings: StackSettings) -> bool:
    # A fresh single node goes red -> yellow/green within seconds; red means shards are missing.
    health = _health(settings)
    return health is not None and health["status"] in {"yellow", "green"}


def _version(settings: StackSettings) -> str | None:
    answer = http_ok(f"{elasticsearch_url(settings)}/_nodes/_local?filter_path=nodes.*.version")
    if isinstance(answer, dict):
        for node in answer.get("nodes", {}).values():
            return str(node.get("version"))
    return None


def status(settings: StackSettings) -> ServiceStatus:
    """State, pid, version, URL and cluster health of the local Elasticsearch."""
    paths = _paths(settings)
    url = elasticsearch_url(settings)
    pid = running_pid(paths["pid"], _marker(settings))
    health = _health(settings)
    if pid is None:
        if health is not None:
            return ServiceStatus(SERVICE, "external", url, version=_version(settings),
                                 health=str(health["status"]), detail="not started by socflow")
        if port_open(settings.elasticsearch_port):
            return ServiceStatus(SERVICE, "external", url, detail="port taken by a non-Elasticsearch process")
        return ServiceStatus(SERVICE, "stopped", url)
    if health is None:
        return ServiceStatus(SERVICE, "unhealthy", url, pid=pid, detail="not answering")
    return ServiceStatus(SERVICE, "running", url, pid=pid, version=_version(settings),
                         health=str(health["status"]))


def start(settings: StackSettings) -> ServiceStatus:
    """Start Elasticsearch unless it already runs; wait until the cluster is at least yellow.

    Idempotent: an instance of ours that is running is left alone. Raises StackError with the
    log tail when the port belongs to something else, Java is missing or startup fails.
    """
    # A concurrent start or stop of the same instance waits for this one.
    with locked(settings.start_lock(SERVICE)):
        return _start(settings)


def _start(settings: StackSettings) -> ServiceStatus:
    current = status(settings)
    if current.state == "running":
        log_event("elasticsearch_already_running", pid=current.pid, url=current.url)
        return current
    paths = _paths(settings)
    if current.state == "unhealthy" and current.pid is not None:
        # Ours but still starting (a concurrent `up`): wait for it rather than start twice.
        if wait_until(lambda: _usable(settings), settings.start_timeout_s):
            return status(settings)
        raise StackError("running but never became healthy", service=SERVICE, log_tail=log_tail(settings))
    if current.state == "external":
        if current.health is not None:
            log_event("elasticsearch_external", url=current.url, version=current.version)
            return current
        raise StackError(f"port {settings.elasticsearch_port} is in use by another process",
                         service=SERVICE)
    if port_open(settings.elasticsearch_transport_port):
        raise StackError(f"transport port {settings.elasticsearch_transport_port} is in use by another process",
                         service=SERVICE)
    java_home = find_java_home(settings)
    started = time.monotonic()
    install(settings)
    user = service_user(settings.service_user)
    _write_config(settings, user)
    paths["pid"].unlink(missing_ok=True)
    # A fresh environment: an ES_JAVA_OPTS or JAVA_TOOL_OPTIONS of the caller must not leak in.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(paths["base"]),
        "ES_JAVA_HOME": str(java_home),
        "ES_PATH_CONF": str(paths["config"]),
        "ES_TMPDIR": str(paths["tmp"]),
    }
    cmd = [*as_user(user), str(paths["home"] / "bin" / "elasticsearch"), "-d", "-p", str(paths["pid"])]
    log_event("elasticsearch_starting", port=settings.elasticsearch_port, java_home=java_home, user=user,
              run_dir=paths["base"])
    paths["logs"].mkdir(parents=True, exist_ok=True)
    with paths["startup_log"].open("ab") as out:
        try:
            # With -d the launcher returns once the server has started (or failed to).
            result = subprocess.run(cmd, env=env, cwd=paths["logs"], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=settings.start_timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise StackError("launcher did not return", service=SERVICE, log_tail=log_tail(settings)) from error
    if result.returncode != 0:
        raise StackError(f"launcher exited with {result.returncode}", service=SERVICE,
                         log_tail=log_tail(settings))

    def died() -> str | None:
        if running_pid(paths["pid"], _marker(settings)) is None:
            return "elasticsearch process exited during startup"
        return None

    try:
        healthy = wait_until(lambda: _usable(settings), settings.start_timeout_s, abort=died)
    except StackError as error:
        raise StackError(error.reason, service=SERVICE, log_tail=log_tail(settings)) from error
    if not healthy:
        raise StackError("not healthy in time", service=SERVICE, log_tail=log_tail(settings))
    final = status(settings)
    log_event("elasticsearch_started", pid=final.pid, url=final.url, version=final.version,
              health=final.health, seconds=round(time.monotonic() - started, 1))
    return final


def stop(settings: StackSettings) -> bool:
    """Stop our Elasticsearch (SIGTERM, SIGKILL after ``stop_timeout_s``). False if it was not running."""
    with locked(settings.start_lock(SERVICE)):
        return _stop(settings)


def _stop(settings: StackSettings) -> bool:
    paths = _paths(settings)
    pid = running_pid(paths["pid"], _marker(settings))
    if pid is None:
        log_event("elasticsearch_not_running", url=elasticsearch_url(settings))
        paths["pid"].unlink(missing_ok=True)
        return False
    stop_pid(pid, settings.stop_timeout_s, name=SERVICE)
    paths["pid"].unlink(missing_ok=True)
    return True


def request(settings: StackSettings, path: str, method: str = "GET", body: object = None) -> object:
    """A JSON request to the local Elasticsearch (for smoke checks; the indexer uses the client)."""
    return http_json(f"{elasticsearch_url(settings)}{path}", method=method, body=body, timeout=30)


def remove_data(settings: StackSettings) -> None:
    """Delete the data dir of a stopped instance (tests start from an empty cluster)."""
    if status(settings).pid is not None:
        raise StackError("refusing to delete data of a running instance", service=SERVICE)
    shutil.rmtree(_paths(settings)["data"], ignore_errors=True)

