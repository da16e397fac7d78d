"""pytest plugin: real Elasticsearch, Kafka and Flink cluster for integration tests.

Loaded from tests/conftest.py (``pytest_plugins = ["tests.conftest_services"]``). Every service
runs as the *test instance* (``StackSettings.for_tests()``), never the developer's:

| service | test port(s) | developer's `socflow stack up` |
|---|---|---|
| Elasticsearch | http 19200, transport 19300 | 9200 / 9300 |
| Kafka (KRaft) | broker 19092, controller 19093 | 9092 / 9093 |
| Flink cluster | REST 18081, RPC 16123, Prometheus 19250-19260 | 8081 / 6123 / 9250-9260 |

and in its own run dir (``/var/lib/socflow-test`` as root, else ``~/.cache/socflow/run-test``).

Fixtures (session scope): ``stack_settings``, ``elasticsearch_url``, ``kafka_bootstrap``,
``flink_cluster`` (REST URL), ``kafka_connector_jars``. A service already up on its test port
is reused and left running; a service a session started is stopped at the end (and starts
from empty data). A service that cannot start fails the test with the reason and the log
tail; only a missing Java or Maven on a developer machine (not CI) makes the tests skip.
Concurrent sessions on one machine share the test instance through ``deploy.lease``: the last
session to finish stops what a session started.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy import elasticsearch, flink, kafka
from deploy.errors import StackError, ToolMissingError
from deploy.lease import shared_service
from deploy.process import ServiceStatus
from deploy.settings import StackSettings


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def _cannot_start(what: str, error: StackError) -> None:
    """Skip for a developer without Java/Maven; otherwise fail loudly with the reason."""
    if isinstance(error, ToolMissingError) and not _in_ci():
        pytest.skip(f"{what}: {error.reason}")
    pytest.fail(f"{what} could not start: {error}", pytrace=False)


def _service(settings: StackSettings, what: str, status: Callable[[StackSettings], ServiceStatus],
             start: Callable[[StackSettings], ServiceStatus], stop: Callable[[StackSettings], bool],
             reset: Callable[[StackSettings], None] | None = None) -> Iterator[ServiceStatus]:
    # Engineers run the suite concurrently on one machine: the lease keeps a service up until
    # the last session using it ends, and never stops one a developer started by hand.
    stack = contextlib.ExitStack()
    try:
        current = stack.enter_context(shared_service(settings, what.lower().replace(" ", "-"), status, start,
                                                     stop, reset=reset))
    except StackError as error:
        _cannot_start(what, error)
        raise  # unreachable: skip/fail raise
    with stack:
        yield current


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    """The test instance's stack settings (test ports, own run dir; cache shared with `stack up`)."""
    from alerts.settings import load_settings

    return load_settings().stack.for_tests()


@pytest.fixture(scope="session")
def elasticsearch_url(stack_settings: StackSettings) -> Iterator[str]:
    """URL of a running single-node Elasticsearch 8.19 (no security; see deploy/elasticsearch.py)."""
    for status in _service(stack_settings, "Elasticsearch", elasticsearch.status, elasticsearch.start,
                           elasticsearch.stop, elasticsearch.remove_data):
        yield status.url


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings: StackSettings) -> Iterator[str]:
    """``host:port`` of a running single-node KRaft Kafka broker."""
    for status in _service(stack_settings, "Kafka", kafka.status, kafka.start, kafka.stop, kafka.remove_data):
        yield status.url


@pytest.fixture(scope="session")
def flink_cluster(stack_settings: StackSettings) -> Iterator[str]:
    """REST URL of a running standalone Flink cluster (1 JobManager, 2 TaskManagers).

    Submit jobs with ``deploy.flink.submit_python_job(stack_settings, script, ...)``.
    """
    for status in _service(stack_settings, "Flink cluster", flink.cluster_status, flink.start_cluster,
                           flink.stop_cluster):
        yield status.url


@pytest.fixture(scope="session")
def kafka_connector_jars(stack_settings: StackSettings) -> list[Path]:
    """The Flink Kafka connector jar(s) for ``env.add_jars(*deploy.flink.jar_urls(...))``."""
    try:
        return flink.kafka_connector_jars(stack_settings)
    except StackError as error:
        _cannot_start("Flink Kafka connector", error)
        raise
