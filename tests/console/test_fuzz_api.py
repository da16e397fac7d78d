"""Fuzz the console's API from its own OpenAPI document (schemathesis, pinned in pyproject).

For every operation in ``/openapi.json`` — so the routes other branches add are fuzzed too —
schemathesis generates requests from the schema (valid and invalid): no answer may be a 5xx,
and a role outside the operation's declared set must get 403 whatever the request holds, a
request without credentials 401. Bounded (a budget of examples spread over the operations) so
the whole run stays near a minute on this machine; set ``SOCFLOW_FUZZ_EXAMPLES`` (per operation
and role) for a long run.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from alerts.api.app import route_table
from alerts.api.security import ROLES
from alerts.settings import Settings
from tests.console.conftest import bearer, make_user
from tests.console.test_routes import declared_roles

# Examples per operation and granted role; the default spreads a fixed budget over however many
# operations the API has (12 on console-core, about 30 with the triage routes), which keeps the
# run near half a minute here.
BUDGET = 240
EXAMPLES = os.environ.get("SOCFLOW_FUZZ_EXAMPLES")
STATUSES: dict[int, int] = {}


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _roles_by_operation(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    return {(method, route.path): declared_roles(route)[0]
            for route in route_table(app) if isinstance(route.original_route, APIRoute)
            for method in route.methods if declared_roles(route)}


def _fuzz(operation: Any, headers: dict[str, str], examples: int, check: Any) -> list[str]:
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
        problem = check(response.status_code)
        if problem:
            failures.append(f"{operation.method.upper()} {operation.path} {case.path_parameters} "
                            f"{case.query} {str(case.body)[:200]}: {problem} ({response.status_code}: "
                            f"{response.text[:200]})")

    run()
    return failures


@pytest.mark.integration
def test_fuzz_every_operation_for_every_role(console_settings: Settings, client: TestClient) -> None:
    app = client.app
    for role in ROLES:
        make_user(console_settings, f"fuzz-{role}", role)
    tokens = {role: bearer(console_settings, f"fuzz-{role}") for role in ROLES}
    roles = _roles_by_operation(app)
    operations = _operations(app)
    assert len(operations) >= 10
    examples = int(EXAMPLES) if EXAMPLES else max(4, min(20, BUDGET // len(operations)))
    denied_examples = max(2, examples // 4)
    failures: list[str] = []
    for operation in operations:
        allowed = roles[(operation.method.upper(), operation.path)]
        failures += _fuzz(operation, {}, denied_examples,
                          lambda status: None if status == 401 else "reachable without credentials")
        for role in ROLES:
            if role not in allowed:
                failures += _fuzz(operation, tokens[role], denied_examples,
                                  lambda status, role=role: None if status == 403 else f"{role} not refused")
    # The granted roles last: an admin's fuzzed changes (disabling users...) must not mask a denial.
    for operation in operations:
        allowed = roles[(operation.method.upper(), operation.path)]
        for role in sorted(allowed, key=lambda r: r != "admin"):
            failures += _fuzz(operation, tokens[role], examples,
                              lambda status: f"server error {status}" if status >= 500 else (
                                  "refused a granted role" if status in (401, 403) else None))
    assert not failures, "\n".join(failures[:20])
    # The fuzz reached past validation into the handlers, not only 4xx at the door.
    assert STATUSES.get(200, 0) + STATUSES.get(201, 0) >= len(operations), STATUSES
