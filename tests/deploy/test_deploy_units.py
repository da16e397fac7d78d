"""Deploy helpers that need no running service: JDK discovery, Maven checksums, settings, pids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import process
from deploy.errors import StackError
from deploy.java import SUPPORTED_JAVA, find_java_home, java_version
from deploy.maven import Coordinates, sha1_of, verify_sha1
from deploy.settings import StackSettings


def test_coordinates_parse_and_paths(tmp_path: Path) -> None:
    coords = Coordinates.parse("org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.19.21:zip")
    assert coords.filename == "elasticsearch-8.19.21.zip"
    assert coords.repo_path(tmp_path) == tmp_path.joinpath(
        "org", "elasticsearch", "distribution", "integ-test-zip", "elasticsearch", "8.19.21",
        "elasticsearch-8.19.21.zip")
    assert str(Coordinates.parse("g:a:1")) == "g:a:1:jar"
    with pytest.raises(ValueError, match="bad Maven coordinates"):
        Coordinates.parse("just-a-name")


def test_sha1_verification_catches_a_changed_file(tmp_path: Path) -> None:
    artifact = tmp_path / "a.jar"
    artifact.write_bytes(b"payload")
    checksum = tmp_path / "a.jar.sha1"
    checksum.write_text(f"{sha1_of(artifact)}  a.jar\n")  # Maven's "<hash> <name>" form is accepted
    verify_sha1(artifact, checksum)
    artifact.write_bytes(b"payload, tampered")
    with pytest.raises(StackError, match="checksum mismatch"):
        verify_sha1(artifact, checksum)


def test_test_instance_never_shares_ports_or_run_dir_with_the_developer() -> None:
    dev = StackSettings(run_dir=Path("/srv/socflow"))
    test = dev.for_tests()
    assert test.effective_run_dir == Path("/srv/socflow-test")
    dev_ports = {dev.elasticsearch_port, dev.elasticsearch_transport_port, dev.kafka_port,
                 dev.kafka_controller_port, dev.flink_rest_port, dev.flink_rpc_port}
    test_ports = {test.elasticsearch_port, test.elasticsearch_transport_port, test.kafka_port,
                  test.kafka_controller_port, test.flink_rest_port, test.flink_rpc_port}
    assert len(test_ports) == 6
    assert not dev_ports & test_ports
    # The Flink Prometheus range must not swallow any service port.
    low, high = (int(part) for part in test.flink_metrics_ports.split("-"))
    assert not any(low <= port <= high for port in test_ports | dev_ports)


def test_default_run_dir_follows_the_user(tmp_path: Path) -> None:
    settings = StackSettings(cache_dir=tmp_path)
    expected = Path("/var/lib/socflow") if os.geteuid() == 0 else tmp_path / "run"
    assert settings.effective_run_dir == expected


def test_java_home_is_a_supported_jdk() -> None:
    try:
        home = find_java_home(StackSettings())
    except StackError as error:
        pytest.skip(str(error))
    assert java_version(home) in SUPPORTED_JAVA


def test_explicit_java_home_of_the_wrong_version_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "jdk"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "java").write_text("#!/bin/sh\n")
    (fake / "release").write_text('JAVA_VERSION="25.0.1"\n')
    with pytest.raises(StackError, match="Java 25"):
        find_java_home(StackSettings(java_home=fake))


def test_pid_checks_require_the_marker_and_stop_escalates(tmp_path: Path) -> None:
    # A child that ignores SIGTERM: stop_pid must fall back to SIGKILL.
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                              "print('ready', flush=True); time.sleep(60)  # socflow-marker"],
                             stdout=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.readline()
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{child.pid}\n")
    assert process.running_pid(pid_file, "socflow-marker") == child.pid
    assert process.running_pid(pid_file, "some-other-service") is None
    assert process.stop_pid(child.pid, timeout=1.0, name="test") is True
    child.wait(timeout=5)
    assert not process.pid_alive(child.pid)


def test_log_tail_of_a_missing_file_says_so(tmp_path: Path) -> None:
    assert "no log" in process.tail(tmp_path / "absent.log")


class FakeService:
    """Records what shared_service asks of a service."""

    def __init__(self, up: bool) -> None:
        self.is_up = up
        self.calls: list[str] = []

    def status(self, settings: StackSettings) -> process.ServiceStatus:
        return process.ServiceStatus("fake", "running" if self.is_up else "stopped", "fake://")

    def start(self, settings: StackSettings) -> process.ServiceStatus:
        self.calls.append("start")
        self.is_up = True
        return self.status(settings)

    def stop(self, settings: StackSettings) -> bool:
        self.calls.append("stop")
        self.is_up = False
        return True

    def reset(self, settings: StackSettings) -> None:
        self.calls.append("reset")


def test_lease_starts_and_stops_a_service_nobody_runs(tmp_path: Path) -> None:
    from deploy.lease import shared_service

    fake = FakeService(up=False)
    with shared_service(StackSettings(run_dir=tmp_path), "fake", fake.status, fake.start, fake.stop,
                        reset=fake.reset) as status:
        assert status.state == "running"
    assert fake.calls == ["reset", "start", "stop"]


def test_lease_never_stops_a_service_a_developer_started(tmp_path: Path) -> None:
    from deploy.lease import shared_service

    fake = FakeService(up=True)
    with shared_service(StackSettings(run_dir=tmp_path), "fake", fake.status, fake.start, fake.stop):
        pass
    assert fake.calls == []


def test_lease_leaves_the_service_to_a_session_still_using_it(tmp_path: Path) -> None:
    from deploy.lease import shared_service

    fake = FakeService(up=False)
    settings = StackSettings(run_dir=tmp_path)
    with shared_service(settings, "fake", fake.status, fake.start, fake.stop):
        # Another live process (pid 1 always exists) takes a lease meanwhile.
        (tmp_path / "leases" / "fake" / "1").touch()
    assert fake.calls == ["start"]
    (tmp_path / "leases" / "fake" / "1").unlink()
    with shared_service(settings, "fake", fake.status, fake.start, fake.stop):
        pass
    assert fake.calls == ["start", "stop"]  # the last user out stops what a session started


def test_stack_status_command_prints_every_service(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from alerts.cli import main

    assert main(["stack", "status", "--test-instance", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["service"] for line in lines] == ["elasticsearch", "kafka", "flink", "event-writer"]
    assert {line["url"] for line in lines} == {"http://127.0.0.1:19200", "127.0.0.1:19092", "http://127.0.0.1:18081",
                                               "http://127.0.0.1:9466/metrics"}
    assert all(line["state"] in {"running", "stopped", "unhealthy", "external"} for line in lines)


def test_a_foreign_process_on_the_port_is_external_and_not_usable(tmp_path: Path) -> None:
    import socket

    from deploy import flink, kafka

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = StackSettings(run_dir=tmp_path, kafka_port=port, flink_rest_port=port)
        for status in (kafka.status(settings), flink.cluster_status(settings)):
            assert status.state == "external"
            assert not status.up
        with pytest.raises(StackError, match="in use by another process"):
            flink.start_cluster(settings)


def test_kafka_cluster_ids_never_start_with_a_dash() -> None:
    """An id starting with "-" is read as an option by ``kafka-storage format`` (a CI flake)."""
    from deploy.kafka import new_cluster_id

    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # the first encodes to "-AAA…"
    cluster_id = new_cluster_id(lambda: next(draws))
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"
    assert all(not new_cluster_id().startswith("-") for _ in range(500))
