"""The HTTP server of `steward serve`: Slack, webhooks, health and metrics.

One WSGI application routes by path and is served by waitress, a
multi-threaded production WSGI server. Slack's requests go to Bolt at
`/slack/events` and the ITSM's lifecycle events to `/events/lifecycle`.
`/healthz` responds 200 while the process runs. `/readyz` responds 200 only
when the database is reachable, its schema is current, the connectors loaded
and Slack accepted the bot token. `/metrics` is the Prometheus exposition.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import Clock, SignatureVerifier
from waitress import wasyncore
from waitress.server import create_server as waitress_server

from bot.context import Bot
from governance.app import Steward
from governance.clock import utcnow
from governance.health import Check, check_database
from governance.webhook.lifecycle import PATH as WEBHOOK_PATH
from governance.webhook.lifecycle import LifecycleWebhook

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"


@dataclass
class Readiness:
    """The checks `/readyz` reports beside the database.

    `checks` are results of start-up checks, and a check that finishes later
    replaces its placeholder through `set`. `probes` run on every request,
    for state that changes while the process runs (a Socket Mode connection).
    """

    checks: list[Check] = field(default_factory=list)
    probes: list[Callable[[], Check]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, check: Check) -> None:
        """Add `check`, replacing the check of the same name if there is one."""
        with self._lock:
            names = [item.name for item in self.checks]
            if check.name in names:
                self.checks[names.index(check.name)] = check
            else:
                self.checks.append(check)

    def current(self) -> list[Check]:
        """Return the start-up checks, then the result of each probe."""
        with self._lock:
            checks = list(self.checks)
        return [*checks, *(probe() for probe in self.probes)]


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


# Slack sends the request time in whole seconds since the epoch.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class _StewardClock(Clock):
    def now(self) -> float:
        return utcnow().timestamp()


class SignedSlackRoute:
    """Pass a request to Slack's route only when its signature is valid.

    Bolt parses the body before it verifies the signature, so an unsigned
    body that is not UTF-8, or whose `payload` is not a JSON object, would
    raise inside Bolt, which then responds with 500. This wrapper rejects
    such requests first, with 401 when the signature is missing or invalid
    and with 400 when the body is not UTF-8 or cannot be parsed. Bolt still
    verifies the signature of what it receives. The log line of a rejection
    names the path, the reason and the client address, never the body,
    which carries a `response_url` and user text.
    """

    def __init__(self, route: WSGIApplication, signing_secret: str | None) -> None:
        self.route = route
        self.verifier = (
            SignatureVerifier(signing_secret, clock=_StewardClock())
            if signing_secret
            else None
        )

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        problem = self._problem(environ, body)
        if problem is not None:
            status, reason = problem
            logger.warning(
                "rejected a request to %s from %s: %s",
                environ.get("PATH_INFO") or "/",
                environ.get("REMOTE_ADDR") or "an unknown address",
                reason,
            )
            return _json(start_response, status, {"error": reason})
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.route(environ, start_response)

    def _problem(self, environ: WSGIEnvironment, body: bytes) -> tuple[str, str] | None:
        """Return the status and reason to reject the request with, or None."""
        if self.verifier is None:
            return "401 Unauthorized", "no signing secret is configured"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "400 Bad Request", "the body is not UTF-8"
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
        if not _TIMESTAMP.fullmatch(timestamp):
            return "401 Unauthorized", "missing or invalid request timestamp"
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if not self.verifier.is_valid(text, timestamp, signature):
            return "401 Unauthorized", "invalid signature or stale timestamp"
        # The same parser Bolt runs on the body (slack_bolt.request.internals,
        # read in slack-bolt 1.30), so a body that passes here parses there too.
        try:
            parsed = parse_body(text, environ.get("CONTENT_TYPE"))
        except ValueError:
            return "400 Bad Request", "the body is not valid JSON"
        if not isinstance(parsed, dict):
            return "400 Bad Request", "the body is not a JSON object"
        return None


def _read_body(environ: WSGIEnvironment) -> bytes:
    """Return the request body; waitress has already bounded its size."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return bytes(stream.read(length)) if length > 0 else b""


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
            secret = steward.settings.slack.signing_secret
            self.routes[SLACK_PATH] = SignedSlackRoute(
                SlackRequestHandler(bot.bolt, path=SLACK_PATH),
                secret.get_secret_value() if secret is not None else None,
            )
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
        checks = [*check_database(self.steward), *self.readiness.current()]
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


class BackgroundServer:
    """A waitress server run on a thread of its own, with a draining stop."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.run, name="steward-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on (the chosen one when asked for 0)."""
        return int(self.server.effective_port)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, grace_seconds: float) -> None:
        """Stop accepting, let requests in progress finish, then close.

        Requests still running after `grace_seconds` are cut off; Slack
        retries a request that was not acknowledged.
        """
        server = self.server
        if not self._thread.is_alive():
            # Never started, or already stopped: close the listening socket.
            server.close()
            return
        # The waitress loop owns its sockets, so closing them runs on its
        # thread through the trigger.
        server.trigger.pull_trigger(lambda: wasyncore.dispatcher.close(server))
        deadline = time.monotonic() + grace_seconds
        while not _idle(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _idle(server):
            logger.warning(
                "stopping the HTTP server with requests still in progress after %s s",
                grace_seconds,
            )
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        self._thread.join(timeout=grace_seconds)
        server.task_dispatcher.shutdown(timeout=grace_seconds)


def _idle(server: Any) -> bool:
    """Return whether no request is queued, running or still being sent."""
    if server.task_dispatcher.queue:
        return False
    return all(
        not channel.requests and not channel.total_outbufs_len
        for channel in list(server.active_channels.values())
    )
