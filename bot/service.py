"""The long-running process of `steward serve`.

Start-up runs in this order. The HTTP server starts first, so that `/healthz`
responds at once. Then each enabled connector is loaded and the background
work starts. Last, a thread of its own calls `auth.test` and, in Socket
Mode, opens the connection, retrying while Slack cannot be reached.
`/readyz` responds 503 until Slack accepted the bot token and, in Socket
Mode, the connection is open.

Stopping runs in the reverse order: the Socket Mode client, the background
work, then the HTTP server, which lets requests in progress finish.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import SecretStr
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.client import APP_TOKEN_PREFIX
from bot.context import Bot
from bot.metrics import StewardMetrics
from bot.scopes import missing_scopes, parse_scopes
from bot.server import SLACK_PATH, BackgroundServer, Readiness, StewardWsgi
from bot.server import create_server as create_http_server
from governance.app import Steward
from governance.errors import ConfigurationError
from governance.health import Check, check_connector
from governance.settings import Settings, SlackSettings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

logger = logging.getLogger(__name__)

SLACK_CHECK = "slack"
SOCKET_MODE_CHECK = "slack socket mode"
# Slack errors that a retry cannot fix: the token is wrong, revoked or of the
# wrong kind. Any other failure is retried with a growing delay.
FATAL_SLACK_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
        "no_permission",
    }
)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Background:
    """Work run beside the server: started after it and stopped before it."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]


def check_slack_credentials(settings: SlackSettings) -> None:
    """Raise ConfigurationError naming each missing or malformed Slack setting."""
    missing = []
    if settings.bot_token is None:
        missing.append("slack.bot_token (STEWARD_SLACK__BOT_TOKEN)")
    if settings.signing_secret is None and settings.app_token is None:
        missing.append(
            "slack.signing_secret (STEWARD_SLACK__SIGNING_SECRET) to receive "
            "Slack's requests over HTTP, or slack.app_token "
            "(STEWARD_SLACK__APP_TOKEN) to use Socket Mode"
        )
    if missing:
        raise ConfigurationError(
            "missing Slack credentials: "
            + "; ".join(missing)
            + ". The README's Slack app section says where to find each one."
        )
    app_token = settings.app_token
    if app_token is not None and not app_token.get_secret_value().startswith(
        APP_TOKEN_PREFIX
    ):
        raise ConfigurationError(
            "slack.app_token (STEWARD_SLACK__APP_TOKEN) is not an app-level "
            f"token: expected a token starting with {APP_TOKEN_PREFIX}, made on the "
            "Slack app's Basic Information page with the connections:write scope"
        )


def load_connectors(settings: Settings) -> list[Check]:
    """Start and close each enabled connector, and return one check for each."""
    checks = []
    for name, instance in sorted(settings.connectors.items()):
        if not instance.enabled:
            continue
        check = check_connector(name, instance.type, instance.options(), contact=False)
        if not check.ok:
            logger.error("%s: %s", check.name, check.detail)
        checks.append(check)
    return checks


def check_slack_auth(client: WebClient) -> tuple[Check, bool]:
    """Call `auth.test` and return the check and whether a retry may change it.

    When Slack sends the token's scopes (the X-OAuth-Scopes header), a token
    that lacks a scope Steward needs fails the check and names the scopes.
    """
    try:
        response = client.auth_test()
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown"))
        check = Check(SLACK_CHECK, False, f"auth.test failed: {code}")
        return check, code not in FATAL_SLACK_ERRORS
    except OSError as error:
        detail = f"auth.test failed: cannot reach Slack: {error}"
        return Check(SLACK_CHECK, False, detail), True
    detail = (
        f"bot user {response.get('user_id')} in workspace {response.get('team_id')}"
    )
    headers = {name.lower(): value for name, value in response.headers.items()}
    header = headers.get("x-oauth-scopes")
    if isinstance(header, list):
        header = ",".join(header)
    if header is not None:
        missing = missing_scopes(parse_scopes(str(header)))
        if missing:
            detail += (
                f", but the bot token lacks the scopes {', '.join(missing)}: add "
                "them (deploy/slack/manifest.yaml lists every scope) and "
                "reinstall the app"
            )
            return Check(SLACK_CHECK, False, detail), False
    return Check(SLACK_CHECK, True, detail), False


class Service:
    """One `steward serve` process: HTTP server, Socket Mode client, background work.

    Socket Mode is used when `slack.app_token` is set. The HTTP server then
    serves every route but `/slack/events`.
    """

    def __init__(
        self,
        steward: Steward,
        bot: Bot,
        *,
        routes: dict[str, WSGIApplication] | None = None,
        background: Sequence[Background] = (),
    ) -> None:
        self.steward = steward
        self.bot = bot
        self.settings = steward.settings
        self.socket_mode = self.settings.slack.app_token is not None
        self.background = list(background)

        self.readiness = Readiness()
        self.application = StewardWsgi(
            steward,
            bot=None if self.socket_mode else bot,
            routes=routes,
            readiness=self.readiness,
            metrics=StewardMetrics(steward),
        )

        server = self.settings.server
        self.http = BackgroundServer(
            create_http_server(
                self.application,
                host=server.host,
                port=server.port,
                threads=server.threads,
                max_body_bytes=server.max_body_bytes,
            )
        )

        self.socket_handler: SocketModeHandler | None = None
        self._socket_error: str | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._started: list[Background] = []
        self._slack_thread: threading.Thread | None = None
        # Set once the Slack checks and the first Socket Mode connection
        # attempt finished, whatever their result.
        self.slack_checked = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.settings.server.host}:{self.http.port}"

    def start(self) -> None:
        """Start the server, the background work and the Slack checks.

        Raises what the start of a background task raised.
        """
        self.http.start()
        slack_route = "Socket Mode" if self.socket_mode else self.url + SLACK_PATH
        logger.info("listening on %s; Slack over %s", self.url, slack_route)
        for check in load_connectors(self.settings):
            self.readiness.set(check)
        self.readiness.set(Check(SLACK_CHECK, False, "auth.test not answered yet"))
        app_token = self.settings.slack.app_token
        if app_token is not None:
            self._create_socket_handler(app_token)
        for task in self.background:
            task.start()
            self._started.append(task)
            logger.info("started %s", task.name)
        self._slack_thread = threading.Thread(
            target=self._start_slack, name="steward-slack-start", daemon=True
        )
        self._slack_thread.start()

    def running(self) -> bool:
        """Return whether the HTTP server still runs."""
        return self.http.is_alive()

    def stop(self) -> None:
        """Stop what started, in reverse order. A second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._slack_thread is not None:
            self._slack_thread.join(timeout=self.settings.slack.timeout_seconds + 1)
        if self.socket_handler is not None:
            # This takes up to 3 seconds with slack_sdk 3.x's built-in client,
            # which closes its socket only after a pending 3-second read ends.
            self.socket_handler.close()  # type: ignore[no-untyped-call]
            logger.info("Socket Mode connection closed")
        for task in reversed(self._started):
            try:
                task.stop()
            except Exception:
                logger.exception("stopping %s failed", task.name)
            else:
                logger.info("stopped %s", task.name)
        self.http.stop(self.settings.server.shutdown_grace_seconds)
        logger.info("HTTP server stopped")

    # Slack

    def _create_socket_handler(self, app_token: SecretStr) -> None:
        self.socket_handler = SocketModeHandler(
            self.bot.bolt,
            app_token.get_secret_value(),
            concurrency=self.settings.server.threads,
        )
        self.readiness.probes.append(self._socket_check)

    def _start_slack(self) -> None:
        try:
            self._check_slack()
            if self.socket_handler is not None:
                self._connect_socket_mode(self.socket_handler)
        finally:
            self.slack_checked.set()

    def _check_slack(self) -> None:
        for _ in _retry_delays(self._stopping):
            check, retryable = check_slack_auth(self.bot.client)
            self.readiness.set(check)
            if check.ok:
                logger.info("Slack accepted the bot token: %s", check.detail)
                break
            if not retryable:
                logger.error(
                    "Slack check failed: %s; check slack.bot_token "
                    "(STEWARD_SLACK__BOT_TOKEN)",
                    check.detail,
                )
                break
            logger.warning("Slack check failed, retrying: %s", check.detail)

    def _connect_socket_mode(self, handler: SocketModeHandler) -> None:
        for _ in _retry_delays(self._stopping):
            try:
                handler.connect()  # type: ignore[no-untyped-call]
            except SlackApiError as error:
                code = str(error.response.get("error", "unknown"))
                self._socket_error = f"apps.connections.open failed: {code}"
                if code in FATAL_SLACK_ERRORS:
                    logger.error(
                        "Socket Mode: %s; check slack.app_token "
                        "(STEWARD_SLACK__APP_TOKEN)",
                        self._socket_error,
                    )
                    return
            except OSError as error:
                self._socket_error = f"cannot reach Slack: {error}"
            else:
                # A failed WebSocket handshake is logged by the client, which
                # then reconnects on its own every ping interval.
                self._socket_error = None
                logger.info("Socket Mode connection opened")
                return
            logger.warning("Socket Mode: %s; retrying", self._socket_error)

    def _socket_check(self) -> Check:
        handler = self.socket_handler
        if handler is not None and handler.client.is_connected():
            return Check(SOCKET_MODE_CHECK, True, "connected")
        detail = self._socket_error or "connecting"
        return Check(SOCKET_MODE_CHECK, False, f"not connected: {detail}")


def _retry_delays(stopping: threading.Event) -> Iterable[None]:
    """Yield once per attempt, waiting a doubling delay between attempts.

    Stops yielding when `stopping` is set, also during a wait.
    """
    delay = FIRST_RETRY_SECONDS
    while not stopping.is_set():
        yield None
        if stopping.wait(delay):
            return
        delay = min(delay * 2, MAX_RETRY_SECONDS)


def run_until_signalled(service: Service) -> bool:
    """Run `service` until SIGTERM or SIGINT, or until its HTTP server stops.

    Returns False when the server stopped without a signal. The signal
    handlers only record the signal, and this loop on the main thread stops
    the service.
    """
    received: list[int] = []

    def _record(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {
        number: signal.signal(number, _record)
        for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        service.start()
        while not received and service.running():
            time.sleep(0.2)
        if received:
            logger.info("stopping on %s", signal.Signals(received[0]).name)
        else:
            logger.error("the HTTP server stopped unexpectedly; stopping")
    finally:
        service.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    logger.info("stopped")
    return bool(received)
