"""The local Elasticsearch: lifecycle on its own instance, and the session fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import ApiError, Elasticsearch

from deploy import elasticsearch
from deploy.errors import StackError, ToolMissingError
from deploy.lease import locked
from deploy.settings import StackSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lifecycle_settings(stack_settings: StackSettings) -> Iterator[StackSettings]:
    """A third instance (own ports and run dir), so stopping it disturbs no other test."""
    base = stack_settings.effective_run_dir
    settings = stack_settings.model_copy(update={
        "run_dir": base.with_name(base.name + "-lifecycle"),
        "elasticsearch_port": 19210,
        "elasticsearch_transport_port": 19310,
    })
    # Concurrent test sessions on this machine would fight over this instance: take turns.
    with locked(settings.effective_run_dir / "lifecycle.lock"):
        if elasticsearch.status(settings).pid is None:
            elasticsearch.remove_data(settings)
        yield settings
        elasticsearch.stop(settings)


def test_start_is_healthy_indexes_searches_and_stops(lifecycle_settings: StackSettings) -> None:
    try:
        started = elasticsearch.start(lifecycle_settings)
    except ToolMissingError as error:
        pytest.skip(str(error))
    assert started.state == "running"
    assert started.health in {"green", "yellow"}
    assert started.version == lifecycle_settings.elasticsearch_version
    assert started.pid is not None

    again = elasticsearch.start(lifecycle_settings)  # idempotent: same process, no second server
    assert again.pid == started.pid

    client = Elasticsearch(elasticsearch.elasticsearch_url(lifecycle_settings), request_timeout=30)
    client.index(index="socflow-smoke", id="doc-1", document={"message": "hello soc", "level": "high"},
                 refresh="wait_for")
    hits = client.search(index="socflow-smoke", query={"match": {"message": "soc"}})["hits"]
    assert hits["total"]["value"] == 1
    assert hits["hits"][0]["_id"] == "doc-1"
    # action.destructive_requires_name: wildcard deletes are refused.
    with pytest.raises(ApiError, match=r"(?i)wildcard|destructive"):
        client.indices.delete(index="socflow-*")
    client.close()

    assert elasticsearch.stop(lifecycle_settings) is True
    assert elasticsearch.status(lifecycle_settings).state == "stopped"
    assert elasticsearch.stop(lifecycle_settings) is False  # stopping twice is fine


def test_port_taken_by_something_else_is_a_clear_error(lifecycle_settings: StackSettings) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = lifecycle_settings.model_copy(update={"elasticsearch_port": port})
        with pytest.raises(StackError, match=f"port {port} is in use"):
            elasticsearch.start(settings)


def test_session_fixture_serves_a_healthy_cluster(elasticsearch_url: str) -> None:
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    health = client.cluster.health(wait_for_status="yellow", timeout="30s")
    assert health["status"] in {"green", "yellow"}
    assert health["number_of_nodes"] == 1
    client.close()
