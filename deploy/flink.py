"""Flink for socflow: PyFlink's own runtime, locally or as a real standalone cluster.

The ``apache-flink`` wheel carries a complete Flink distribution (``bin/``, ``lib/``,
``plugins/`` next to ``pyflink/__init__.py``), so FLINK_HOME is the ``pyflink`` package dir and
nothing else is downloaded for Flink itself. Only the Kafka connector comes from Maven Central.

- :func:`local_env` / :func:`apply_local_env`: what a process needs before it creates a PyFlink
  environment with the local (embedded) runtime: a JDK 17/21 in JAVA_HOME.
- :func:`start_cluster` / :func:`stop_cluster` / :func:`cluster_status`: one JobManager and
  ``flink_taskmanagers`` TaskManagers on 127.0.0.1 with a generated config dir under
  ``<run_dir>/flink`` (runs as the invoking user: Flink has no objection to root, and the
  Python workers must reach the project's virtualenv).
- :func:`submit_python_job`, :func:`wait_for_job`, :func:`cancel_job`: run a PyFlink job file
  on that cluster with ``bin/flink run -py`` and follow it over the REST API.
- :func:`kafka_connector_jars`: the connector jars for ``env.add_jars(*jar_urls(...))``.
- :func:`socflow_flink_jar`: socflow's own Java classes: a split assigner, which makes the spool
  source read a backlog of segments oldest first, and a watermark generator that emits with the
  records (so a checkpoint never separates them); compiled from ``detectors/flink/java`` with
  the JDK's ``javac`` on first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deploy.errors import StackError, ToolMissingError
from deploy.java import find_java_home
from deploy.maven import fetch_artifact
from deploy.process import (
    ServiceStatus,
    http_json,
    http_ok,
    locked,
    log_event,
    pid_alive,
    port_open,
    stop_pid,
    tail,
    wait_until,
)
from deploy.settings import StackSettings

SERVICE = "flink"
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED", "SUSPENDED"})


def flink_home() -> Path:
    """The Flink distribution inside the installed ``pyflink`` package (no import of pyflink)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise StackError("the apache-flink package is not installed in this Python", service=SERVICE)
    home = Path(spec.origin).resolve().parent
    if not (home / "bin" / "flink").exists() or not (home / "lib").is_dir():
        raise StackError(f"{home} has no bin/flink or lib/: not a full PyFlink wheel", service=SERVICE)
    return home


def python_executable() -> Path:
    """The interpreter of this virtualenv: Python workers and the job client must use it."""
    return Path(sys.executable)


def local_env(settings: StackSettings) -> dict[str, str]:
    """Environment variables for running PyFlink's local runtime in this or a child process.

    JAVA_HOME must name a JDK Flink 2.2 supports (17 or 21) before PyFlink starts its JVM
    gateway; the machine default may be newer. PATH starts with this virtualenv's bin: the
    local runtime launches Python workers as plain ``python`` unless ``python.executable`` is
    set. Merge the result into ``os.environ`` or a child's env.
    """
    java_home = find_java_home(settings)
    path = os.pathsep.join([str(python_executable().parent), str(java_home / "bin"),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    return {
        "JAVA_HOME": str(java_home),
        "PATH": path,
        "PYFLINK_CLIENT_EXECUTABLE": str(python_executable()),
    }


def apply_local_env(settings: StackSettings) -> None:
    """Put :func:`local_env` into ``os.environ`` (call before the first PyFlink environment)."""
    os.environ.update(local_env(settings))


def kafka_connector_jars(settings: StackSettings) -> list[Path]:
    """Jars a PyFlink job needs for Kafka sources and sinks (fetched with Maven on first use).

    The ``flink-sql-connector-kafka`` jar is the connector with kafka-clients shaded in, so
    this one jar serves both the DataStream ``KafkaSource``/``KafkaSink`` and SQL tables.
    """
    version = settings.flink_kafka_connector_version
    return [fetch_artifact(f"org.apache.flink:flink-sql-connector-kafka:{version}:jar", settings.cache_dir)]


# Java classes of socflow's own jar (:func:`socflow_flink_jar`): one with a static ``provider()``
# that orders the spool source's splits oldest first, one with a static ``textLines()`` format
# that reads the spool's lines and then names each segment read to its end, one with a static
# ``strategy()`` whose watermarks leave with the records that move them, and a filter that
# splits keyed records by correlation chain level in the JVM.
SPOOL_SPLIT_ASSIGNER = "org.socflow.flink.OrderedSplitAssigner"
SPOOL_LINES_FORMAT = "org.socflow.flink.SegmentEndLines"
# Wraps the spool's file source so that its checkpoints leave out segments the spool has deleted.
FORGETFUL_FILE_SOURCE = "org.socflow.flink.ForgetfulFileSource"
EAGER_WATERMARKS = "org.socflow.flink.EagerWatermarks"
KEY_LEVEL_FILTER = "org.socflow.flink.KeyLevelFilter"
SUBTASK_KEY = "org.socflow.flink.SubtaskKey"
JAVA_SOURCES = Path(__file__).resolve().parents[1] / "detectors" / "flink" / "java"


def socflow_flink_jar(java_home: Path, cache_dir: Path) -> Path:
    """The jar of :data:`SPOOL_SPLIT_ASSIGNER`, :data:`SPOOL_LINES_FORMAT`, :data:`EAGER_WATERMARKS`,
    :data:`KEY_LEVEL_FILTER` and :data:`SUBTASK_KEY`, compiled against PyFlink's own Flink jars.

    Cached in ``cache_dir/jars`` under the hash of the sources, so an edit rebuilds it and two
    processes never build it at once. Needs the JDK's ``javac`` (the project runs on a JDK).
    """
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    target = cache_dir / "jars" / f"socflow-flink-{digest}.jar"
    if target.exists():
        return target
    javac = java_home / "bin" / "javac"
    if not javac.exists():
        raise ToolMissingError(f"{java_home} has no bin/javac: a JDK is needed to build {target.name}",
                               service=SERVICE)
    with locked(cache_dir / ".locks" / f"{target.name}.lock"):
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(prefix="socflow-javac-") as temporary:
            classes = Path(temporary) / "classes"
            result = subprocess.run(
                [str(javac), "--release", "17", "-nowarn", "-d", str(classes),
                 "-cp", str(flink_home() / "lib" / "*"), *map(str, sources)],
                capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StackError(f"javac failed for {target.name}: {result.stderr[-2000:]}", service=SERVICE)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
                jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: socflow\n\n")
                for path in sorted(classes.rglob("*.class")):
                    jar.write(path, path.relative_to(classes).as_posix())
            os.replace(partial, target)
    log_event("socflow_flink_jar_built", jar=str(target))
    return target


def jar_urls(jars: Sequence[Path]) -> list[str]:
    """``file://`` URLs for ``env.add_jars(*...)`` / ``pipeline.jars``."""
    return [path.resolve().as_uri() for path in jars]


# --- standalone cluster ---------------------------------------------------------------------


def rest_url(settings: StackSettings) -> str:
    """Base URL of the cluster's REST API and web UI."""
    return f"http://127.0.0.1:{settings.flink_rest_port}"


def _paths(settings: StackSettings) -> dict[str, Path]:
    base = settings.service_dir(SERVICE)
    return {"base": base, "conf": base / "conf", "logs": base / "logs", "pids": base / "pids",
            "tmp": base / "tmp", "checkpoints": base / "checkpoints"}


def config_yaml(settings: StackSettings, java_home: Path) -> str:
    """The cluster's config.yaml (Flink 2 reads standard YAML)."""
    paths = _paths(settings)
    python = python_executable()
    return f"""\
# Generated by socflow (deploy/flink.py); edits are overwritten on `socflow stack up --flink-cluster`.
env:
  java:
    home: {java_home}
    opts:
      all: {_java_opts_all()}
jobmanager:
  bind-host: 127.0.0.1
  rpc:
    address: 127.0.0.1
    port: {settings.flink_rpc_port}
  memory:
    process:
      size: {settings.flink_jobmanager_memory}
  execution:
    failover-strategy: region
taskmanager:
  bind-host: 127.0.0.1
  host: 127.0.0.1
  numberOfTaskSlots: {settings.flink_slots_per_taskmanager}
  memory:
    process:
      size: {settings.flink_taskmanager_memory}
  # Spread slots over all TaskManagers instead of filling one first: a scale test should
  # exercise the network between them (Flink 2 replaced cluster.evenly-spread-out-slots).
  load-balance:
    mode: SLOTS
parallelism:
  default: {settings.flink_taskmanagers}
rest:
  address: 127.0.0.1
  bind-address: 127.0.0.1
  port: {settings.flink_rest_port}
io:
  tmp:
    dirs: {paths['tmp']}
state:
  checkpoints:
    dir: {paths['checkpoints'].as_uri()}
python:
  executable: {python}
  client:
    executable: {python}
metrics:
  reporter:
    prom:
      factory:
        class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
      # One port per process (JobManager, each TaskManager) out of this range.
      port: {settings.flink_metrics_ports}
"""


def _java_opts_all() -> str:
    """The distribution's own ``env.java.opts.all`` (module opens Flink needs on Java 17)."""
    default = flink_home() / "conf" / "config.yaml"
    try:
        match = re.search(r"^\s+all:\s*(--add-exports.*)$", default.read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else ""


def _write_config(settings: StackSettings, java_home: Path) -> None:
    paths = _paths(settings)
    for name in ("conf", "logs", "pids", "tmp", "checkpoints"):
        paths[name].mkdir(parents=True, exist_ok=True)
    home_conf = flink_home() / "conf"
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties",
                 "log4j-session.properties", "logback.xml", "logback-console.xml"):
        if (home_conf / name).exists():
            shutil.copyfile(home_conf / name, paths["conf"] / name)
    (paths["conf"] / "config.yaml").write_text(config_yaml(settings, java_home))
    (paths["conf"] / "masters").write_text(f"127.0.0.1:{settings.flink_rest_port}\n")
    (paths["conf"] / "workers").write_text("127.0.0.1\n" * settings.flink_taskmanagers)


def _env(settings: StackSettings, java_home: Path) -> dict[str, str]:
    paths = _paths(settings)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLINK_", "PYFLINK_"))}
    env.update({
        "JAVA_HOME": str(java_home),
        "FLINK_HOME": str(flink_home()),
        "FLINK_CONF_DIR": str(paths["conf"]),
        "FLINK_LOG_DIR": str(paths["logs"]),
        "FLINK_PID_DIR": str(paths["pids"]),
        "PATH": f"{java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
    })
    return env


def _cluster_pids(settings: StackSettings) -> dict[str, list[int]]:
    """Live pids per daemon kind from the scripts' pid files, checked against our config dir."""
    paths = _paths(settings)
    marker = str(paths["conf"])
    found: dict[str, list[int]] = {"standalonesession": [], "taskexecutor": []}
    for pid_file in paths["pids"].glob("*.pid"):
        kind = "taskexecutor" if "taskexecutor" in pid_file.name else "standalonesession"
        for line in pid_file.read_text().split():
            if line.isdigit() and pid_alive(int(line), marker):
                found[kind].append(int(line))
    return found


def _overview(settings: StackSettings) -> dict[str, Any] | None:
    answer = http_ok(f"{rest_url(settings)}/overview")
    return answer if isinstance(answer, dict) and "taskmanagers" in answer else None


def _complete(settings: StackSettings, overview: dict[str, Any] | None) -> bool:
    """All TaskManagers registered *and* their slots reported (a TaskManager registers first and
    reports its slots a moment later; a job submitted in between may not get its parallelism)."""
    if overview is None:
        return False
    expected_slots = settings.flink_taskmanagers * settings.flink_slots_per_taskmanager
    return (int(overview.get("taskmanagers", 0)) >= settings.flink_taskmanagers
            and int(overview.get("slots-total", 0)) >= expected_slots)


def log_tail(settings: StackSettings, lines: int = 30) -> str:
    logs = _paths(settings)["logs"]
    files = sorted(logs.glob("flink-*.log"), key=lambda path: path.stat().st_mtime)[-3:]
    files += sorted(logs.glob("flink-*.out"), key=lambda path: path.stat().st_mtime)[-2:]
    return "\n".join(f"== {path.name}\n{tail(path, lines)}" for path in files) or f"(no logs under {logs})"


def cluster_status(settings: StackSettings) -> ServiceStatus:
    """State of the standalone cluster; ``detail`` counts TaskManagers and slots."""
    url = rest_url(settings)
    pids = _cluster_pids(settings)
    overview = _overview(settings)
    jobmanager = pids["standalonesession"][0] if pids["standalonesession"] else None
    if jobmanager is None:
        if overview is not None:
            return ServiceStatus(SERVICE, "external", url, version=overview.get("flink-version"), health="ok",
                                 detail=f"not started by socflow; taskmanagers={overview.get('taskmanagers')}")
        if port_open(settings.flink_rest_port):
            return ServiceStatus(SERVICE, "external", url, detail="port taken by a non-Flink process")
        state = "unhealthy" if pids["taskexecutor"] else "stopped"
        return ServiceStatus(SERVICE, state, url,
                             detail=f"orphan taskmanagers={len(pids['taskexecutor'])}" if pids["taskexecutor"]
                             else None)
    if overview is None:
        return ServiceStatus(SERVICE, "unhealthy", url, pid=jobmanager, detail="REST API not answering")
    taskmanagers = int(overview.get("taskmanagers", 0))
    healthy = _complete(settings, overview)
    return ServiceStatus(
        SERVICE, "running" if healthy else "unhealthy", url, pid=jobmanager,
        version=overview.get("flink-version"), health="ok" if healthy else "degraded",
        detail=f"taskmanagers={taskmanagers} slots={overview.get('slots-total')} "
               f"jobs_running={overview.get('jobs-running')}")


def _script(settings: StackSettings, java_home: Path, script: str, action: str) -> None:
    paths = _paths(settings)
    result = subprocess.run([str(flink_home() / "bin" / script), action], env=_env(settings, java_home),
                            cwd=paths["base"], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise StackError(f"{script} {action} failed: {(result.stdout + result.stderr).strip()[-2000:]}",
                         service=SERVICE, log_tail=log_tail(settings))


def start_cluster(settings: StackSettings) -> ServiceStatus:
    """Start a JobManager and ``flink_taskmanagers`` TaskManagers; wait until all registered.

    Idempotent: a healthy cluster of ours is left alone; missing TaskManagers are added.
    """
    # A concurrent start or stop of the same instance waits for this one.
    with locked(settings.start_lock(SERVICE)):
        return _start_cluster(settings)


def _start_cluster(settings: StackSettings) -> ServiceStatus:
    current = cluster_status(settings)
    if current.state == "running":
        log_event("flink_cluster_already_running", pid=current.pid, url=current.url)
        return current
    if current.state == "external":
        if current.up:
            log_event("flink_cluster_external", url=current.url, detail=current.detail)
            return current
        raise StackError(f"REST port {settings.flink_rest_port} is in use by another process "
                         f"({current.detail})", service=SERVICE)
    java_home = find_java_home(settings)
    started = time.monotonic()
    pids = _cluster_pids(settings)
    if not pids["standalonesession"]:
        if port_open(settings.flink_rpc_port):
            raise StackError(f"RPC port {settings.flink_rpc_port} is in use by another process", service=SERVICE)
        # Stale pid files would make the scripts stop or count processes that are long gone.
        for pid_file in _paths(settings)["pids"].glob("*.pid"):
            pid_file.unlink()
        for pid in pids["taskexecutor"]:
            stop_pid(pid, settings.stop_timeout_s, name="flink-taskmanager")
        pids = {"standalonesession": [], "taskexecutor": []}
        _write_config(settings, java_home)
        log_event("flink_cluster_starting", rest_port=settings.flink_rest_port, java_home=java_home,
                  taskmanagers=settings.flink_taskmanagers, run_dir=_paths(settings)["base"])
        _script(settings, java_home, "jobmanager.sh", "start")
    for _ in range(settings.flink_taskmanagers - len(pids["taskexecutor"])):
        _script(settings, java_home, "taskmanager.sh", "start")

    def ready() -> bool:
        return _complete(settings, _overview(settings))

    def died() -> str | None:
        alive = _cluster_pids(settings)
        if not alive["standalonesession"]:
            return "the JobManager exited during startup"
        if len(alive["taskexecutor"]) < settings.flink_taskmanagers:
            return "a TaskManager exited during startup"
        return None

    try:
        # The pid files appear a moment after the scripts return; give them that moment.
        time.sleep(1.0)
        healthy = wait_until(ready, settings.start_timeout_s, abort=died)
    except StackError as error:
        raise StackError(error.reason, service=SERVICE, log_tail=log_tail(settings)) from error
    if not healthy:
        raise StackError("TaskManagers did not all register in time", service=SERVICE, log_tail=log_tail(settings))
    final = cluster_status(settings)
    log_event("flink_cluster_started", pid=final.pid, url=final.url, detail=final.detail,
              seconds=round(time.monotonic() - started, 1))
    return final


def stop_cluster(settings: StackSettings) -> bool:
    """Stop TaskManagers, then the JobManager (SIGTERM, SIGKILL after ``stop_timeout_s``)."""
    with locked(settings.start_lock(SERVICE)):
        return _stop_cluster(settings)


def _stop_cluster(settings: StackSettings) -> bool:
    pids = _cluster_pids(settings)
    if not pids["standalonesession"] and not pids["taskexecutor"]:
        log_event("flink_cluster_not_running", url=rest_url(settings))
        return False
    for pid in pids["taskexecutor"]:
        stop_pid(pid, settings.stop_timeout_s, name="flink-taskmanager")
    for pid in pids["standalonesession"]:
        stop_pid(pid, settings.stop_timeout_s, name="flink-jobmanager")
    for pid_file in _paths(settings)["pids"].glob("*.pid"):
        pid_file.unlink()
    return True


# --- jobs on the cluster --------------------------------------------------------------------

JOB_ID = re.compile(r"JobID\s+([0-9a-f]{32})")


def submit_python_job(
    settings: StackSettings,
    script: Path,
    args: Sequence[str] = (),
    *,
    parallelism: int | None = None,
    jars: Sequence[Path] = (),
    py_files: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
    detached: bool = True,
    timeout_s: float = 300.0,
) -> str:
    """Submit the PyFlink job ``script`` to the standalone cluster; returns its job id.

    ``bin/flink run -py`` runs the script with this virtualenv's python (``-pyclientexec``) to
    build the job graph and the TaskManagers run its Python functions with the same interpreter
    (``-pyexec``). ``py_files`` (files or dirs) are shipped to the workers (``-pyfs``); ``jars``
    go on the user classpath (``-C``, local paths: the cluster runs on this machine); ``conf``
    becomes ``-D key=value``. Detached by default: follow the job with :func:`wait_for_job`.
    """
    status_now = cluster_status(settings)
    if not status_now.up:
        raise StackError(f"no running cluster at {rest_url(settings)} (state {status_now.state}); "
                         "start it with `socflow stack up --flink-cluster`", service=SERVICE)
    java_home = find_java_home(settings)
    python = str(python_executable())
    cmd = [str(flink_home() / "bin" / "flink"), "run", "-pyclientexec", python, "-pyexec", python]
    if detached:
        cmd.append("-d")
    if parallelism is not None:
        cmd += ["-p", str(parallelism)]
    # -C puts each jar on the user classpath of the client (the Python driver resolves Java
    # classes such as KafkaSource there while building the graph) and of every TaskManager;
    # a -Dpipeline.jars alone is not seen by the client's classloader.
    for url in jar_urls(jars):
        cmd += ["-C", url]
    for key, value in (conf or {}).items():
        cmd.append(f"-D{key}={value}")
    if py_files:
        cmd += ["-pyfs", ",".join(str(Path(item).resolve()) for item in py_files)]
    cmd += ["-py", str(Path(script).resolve()), *args]
    env = _env(settings, java_home)
    log_event("flink_job_submitting", script=script, parallelism=parallelism, url=rest_url(settings))
    try:
        result = subprocess.run(cmd, env=env, cwd=Path(script).resolve().parent, capture_output=True, text=True,
                                timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise StackError(f"flink run did not return within {timeout_s:.0f}s", service=SERVICE) from error
    output = result.stdout + result.stderr
    match = JOB_ID.search(output)
    if result.returncode != 0 or match is None:
        raise StackError(f"flink run failed (exit {result.returncode})", service=SERVICE,
                         log_tail="\n".join(output.splitlines()[-40:]))
    job_id = match.group(1)
    log_event("flink_job_submitted", job_id=job_id, script=script)
    return job_id


def job_details(settings: StackSettings, job_id: str) -> dict[str, Any]:
    """``GET /jobs/<id>``: state, vertices (with parallelism), timestamps."""
    answer = http_json(f"{rest_url(settings)}/jobs/{job_id}", timeout=10)
    if not isinstance(answer, dict):
        raise StackError(f"unexpected answer for job {job_id}", service=SERVICE)
    return answer


def wait_for_job(settings: StackSettings, job_id: str, timeout_s: float = 300.0,
                 states: frozenset[str] = TERMINAL_STATES) -> str:
    """Poll the job until its state is in ``states``; returns that state (raises on timeout)."""
    deadline = time.monotonic() + timeout_s
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = str(job_details(settings, job_id).get("state"))
        if state in states:
            log_event("flink_job_state", job_id=job_id, state=state)
            return state
        time.sleep(0.5)
    raise StackError(f"job {job_id} still {state} after {timeout_s:.0f}s", service=SERVICE)


def job_exceptions(settings: StackSettings, job_id: str) -> str:
    """The root exception of a failed job, for error messages."""
    answer = http_ok(f"{rest_url(settings)}/jobs/{job_id}/exceptions")
    if isinstance(answer, dict):
        root = answer.get("root-exception") or ""
        history = answer.get("exceptionHistory", {}).get("entries", [])
        if not root and history:
            root = history[0].get("stacktrace", "")
        return str(root)[-4000:]
    return ""


def cancel_job(settings: StackSettings, job_id: str) -> None:
    """Cancel a running job (``PATCH /jobs/<id>?mode=cancel``)."""
    http_json(f"{rest_url(settings)}/jobs/{job_id}?mode=cancel", method="PATCH", timeout=10)
    log_event("flink_job_cancel_requested", job_id=job_id)


def subtask_taskmanagers(settings: StackSettings, job_id: str) -> dict[str, set[str]]:
    """For each vertex name, the TaskManager ids its subtasks ran on (shows the spread)."""
    spread: dict[str, set[str]] = {}
    for vertex in job_details(settings, job_id).get("vertices", []):
        answer = http_json(f"{rest_url(settings)}/jobs/{job_id}/vertices/{vertex['id']}", timeout=10)
        spread[vertex["name"]] = {str(sub.get("taskmanager-id")) for sub in answer.get("subtasks", [])}
    return spread
