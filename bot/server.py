"""The HTTP server of `steward serve`: Slack, webhooks, health and metrics.

One WSGI application routes by path and is served by waitress, a
multi-threaded production WSGI server. Slack's requests go to Bolt at
`/slack/events` and the ITSM's lifecycle events to `/events/lifecycle`;
`/healthz` answers while the process runs; `/readyz`
answers 200 only when the database is reachable, its schema is current and
the connectors loaded; `/metrics` is the Prometheus exposition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server as waitress_server

from bot.context import Bot
from governance.app import Steward
from governance.health import Check, check_database
from governance.webhook.lifecycle import PATH as WEBHOOK_PATH
from governance.webhook.lifecycle import LifecycleWebhook

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"


@dataclass
class Readiness:
    """What `/readyz` reports beside the database: checks set at start-up."""

    checks: list[Check] = field(default_factory=list)


def _json(
    start_response: StartResponse, status: str, document: dict[str, Any]
) -> list[bytes]:
    body = json.dumps(document, sort_keys=True).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


class StewardWsgi:
    """Routes requests by path; every unknown path answers 404."""

    def __init__(
        self,
        steward: Steward,
        *,
        bot: Bot | None = None,
        routes: dict[str, WSGIApplication] | None = None,
        readiness: Readiness | None = None,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
    ) -> None:
        self.steward = steward
        self.readiness = readiness or Readiness()
        self.metrics = metrics
        self.routes: dict[str, WSGIApplication] = dict(routes or {})
        if bot is not None:
            self.routes[SLACK_PATH] = SlackRequestHandler(bot.bolt, path=SLACK_PATH)
        self.routes.setdefault(WEBHOOK_PATH, LifecycleWebhook(steward))

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path in self.routes:
            return self.routes[path](environ, start_response)
        if path == "/healthz" and method in {"GET", "HEAD"}:
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz" and method in {"GET", "HEAD"}:
            return self._ready(start_response)
        if path == "/metrics" and method == "GET" and self.metrics is not None:
            body, content_type = self.metrics()
            start_response(
                "200 OK",
                [("Content-Type", content_type), ("Content-Length", str(len(body)))],
            )
            return [body]
        return _json(start_response, "404 Not Found", {"error": "not found"})

    def _ready(self, start_response: StartResponse) -> list[bytes]:
        checks = [*check_database(self.steward), *self.readiness.checks]
        ready = all(check.ok for check in checks)
        status = "200 OK" if ready else "503 Service Unavailable"
        if not ready:
            failed = [check.name for check in checks if not check.ok]
            logger.warning("not ready: %s", ", ".join(failed))
        return _json(
            start_response,
            status,
            {
                "status": "ready" if ready else "not ready",
                "checks": [check.as_dict() for check in checks],
            },
        )


def create_server(
    application: WSGIApplication,
    *,
    host: str,
    port: int,
    threads: int,
    max_body_bytes: int,
) -> Any:
    """Return a waitress server bound to host:port (port 0 picks a free one)."""
    return waitress_server(
        application,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=max_body_bytes,
        ident="steward",
        clear_untrusted_proxy_headers=True,
    )
