"""``socflow stack up|down|status``: the local services socflow runs on.

``up`` starts Elasticsearch (always), Kafka (``--with-kafka``), a standalone Flink cluster
(``--flink-cluster``) and the event writer (``--event-writer``: ``socflow index events --follow``
in the background, storing every collected event), fetching the pinned artifacts with Maven on
first use; it is idempotent. ``down`` stops whatever of them socflow started; ``status`` prints
one line per service.
The work is done by the ``deploy`` package; this module only parses and reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict

from alerts.eventstore import service as event_writer
from alerts.settings import Settings
from deploy import elasticsearch, flink, kafka
from deploy.errors import StackError
from deploy.process import ServiceStatus
from deploy.settings import StackSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stack", help="start, stop or inspect the local Elasticsearch, Kafka, Flink")
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the services (idempotent)")
    up.add_argument("--with-kafka", action="store_true", help="also start a single-node Kafka broker")
    up.add_argument("--flink-cluster", action="store_true",
                    help="also start a standalone Flink cluster (JobManager + TaskManagers)")
    up.add_argument("--no-elasticsearch", action="store_true", help="do not start Elasticsearch")
    up.add_argument("--event-writer", action="store_true",
                    help="also run the event writer (socflow index events --follow) over the data dir's spool")
    down = actions.add_parser("down", help="stop the services socflow started")
    down.add_argument("--keep-elasticsearch", action="store_true", help="leave Elasticsearch running")
    status = actions.add_parser("status", help="state, version, pid, URL and health of each service")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    for action in (up, down, status):
        action.add_argument("--test-instance", action="store_true",
                            help="act on the test suite's instance (test ports and run dir)")
    parser.set_defaults(handler=handler)


def _stack(args: argparse.Namespace, settings: Settings) -> StackSettings:
    return settings.stack.for_tests() if getattr(args, "test_instance", False) else settings.stack


def _print(status: ServiceStatus, as_json: bool = False) -> None:
    print(json.dumps(asdict(status), sort_keys=True) if as_json else status.line())


def handler(args: argparse.Namespace, settings: Settings) -> int:
    stack = _stack(args, settings)
    try:
        if args.stack_action == "up":
            steps: list[Callable[[StackSettings], ServiceStatus]] = []
            if not args.no_elasticsearch:
                steps.append(elasticsearch.start)
            if args.with_kafka:
                steps.append(kafka.start)
            if args.flink_cluster:
                steps.append(flink.start_cluster)
            for step in steps:
                _print(step(stack))
            if args.event_writer:
                _print(event_writer.start(settings.data_dir, elasticsearch.elasticsearch_url(stack),
                                          settings.event_store.metrics_port, config=args.config))
            return 0
        writer = event_writer.status(settings.data_dir, elasticsearch.elasticsearch_url(stack),
                                     settings.event_store.metrics_port)
        if args.stack_action == "down":
            event_writer.stop(settings.data_dir)  # first: it writes to the Elasticsearch stopped below
            flink.stop_cluster(stack)
            kafka.stop(stack)
            if not args.keep_elasticsearch:
                elasticsearch.stop(stack)
            writer = event_writer.status(settings.data_dir, writer.url, settings.event_store.metrics_port)
            for status in (elasticsearch.status(stack), kafka.status(stack), flink.cluster_status(stack), writer):
                _print(status)
            return 0
        statuses = [elasticsearch.status(stack), kafka.status(stack), flink.cluster_status(stack), writer]
        for status in statuses:
            _print(status, args.json)
        return 0
    except StackError as error:
        print(f"socflow: error: {error}", file=sys.stderr)
        return 1
