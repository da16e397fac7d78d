"""What every route of the console reaches through ``console(request)``.

``create_app`` builds one ``Console`` and keeps it in ``app.state.console``: the settings, the
user store, sessions, the login limiter, the audit trail, the Elasticsearch client, its cached
health, the clock (tests pass a fixed one) and the page templates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from elasticsearch import Elasticsearch
from fastapi import Request
from starlette.templating import Jinja2Templates

from alerts.api.sessions import LoginLimiter, SessionStore
from alerts.audit.trail import AuditTrail
from alerts.metrics import CONSOLE_ELASTICSEARCH_UP
from alerts.settings import Settings
from alerts.users.store import UserStore
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)


class ElasticsearchHealth:
    """Is Elasticsearch reachable? One probe per ``ttl_s``; a failed request marks it down at once."""

    def __init__(self, client: Elasticsearch, ttl_s: float) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._checked = -float("inf")
        self._reason: str | None = None
        self._lock = threading.Lock()

    def reason(self) -> str | None:
        """None when Elasticsearch answers; else why not, in words for the banner."""
        with self._lock:
            if time.monotonic() - self._checked < self.ttl_s:
                return self._reason
        reason = self._probe()
        with self._lock:
            if (reason is None) != (self._reason is None):
                log_event(LOGGER, "elasticsearch_up" if reason is None else "elasticsearch_down",
                          logging.INFO if reason is None else logging.WARNING, reason=reason)
            self._reason, self._checked = reason, time.monotonic()
        CONSOLE_ELASTICSEARCH_UP.set(0 if reason else 1)
        return reason

    def failed(self, reason: str) -> None:
        """A request just failed: say so until the next probe (after ``ttl_s``) finds it back."""
        with self._lock:
            if self._reason is None:
                log_event(LOGGER, "elasticsearch_down", logging.WARNING, reason=reason)
            self._reason, self._checked = reason, time.monotonic()
        CONSOLE_ELASTICSEARCH_UP.set(0)

    def _probe(self) -> str | None:
        try:
            health = self.client.options(request_timeout=3, max_retries=0).cluster.health()
        except Exception as error:  # noqa: BLE001 - any failure means "down"; the reason is shown
            return f"Elasticsearch is unreachable ({type(error).__name__})"
        if health.get("status") == "red":
            return "Elasticsearch cluster status is red"
        return None


@dataclass
class Console:
    """Shared state of one console process."""

    settings: Settings
    users: UserStore
    sessions: SessionStore
    limiter: LoginLimiter
    audit: AuditTrail
    es: Elasticsearch
    health: ElasticsearchHealth
    clock: Callable[[], datetime]
    templates: Jinja2Templates

    @property
    def tls(self) -> bool:
        return self.settings.console.tls

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers refuse the cookie unless Secure, path=/ and host-only.
        return "__Host-socflow_session" if self.tls else "socflow_session"

    @property
    def login_cookie(self) -> str:
        return "__Host-socflow_login" if self.tls else "socflow_login"


def console(request: Request) -> Console:
    state: Console = request.app.state.console
    return state
