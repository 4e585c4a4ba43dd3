"""Socket Mode: the real SDK client against a loopback WebSocket stand-in.

The transport does not touch the database, so these tests run on SQLite
only: each one pays about 3 seconds for the SDK client to close.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_bolt import Ack

from bot.app import build_bot
from bot.context import Bot
from bot.local_api import SlackApi
from bot.nhi.replies import help_reply
from bot.payloads import block_action_body, event_body, slash_command_body
from bot.service import SOCKET_MODE_CHECK, Service
from governance.app import Steward, create_app
from governance.settings import ServerSettings, Settings
from tests.bot.conftest import OWNER_ID, get
from tests.bot.socket_standin import (
    SocketModeServer,
    events_api_envelope,
    interactive_envelope,
    slash_command_envelope,
)
from tests.bot.test_serve import checks_by_name, refused

APP_TOKEN = "xapp-1-A0STEWARD-test"


class Received:
    """What the test listeners saw, with an event per kind to wait on."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.event_seen = threading.Event()
        self.action_seen = threading.Event()

    def register(self, bot: Bot) -> None:
        # An event type and an action id no Steward listener uses.
        @bot.bolt.event("reaction_added")
        def reaction_added(ack: Ack, event: dict[str, Any]) -> None:
            ack()
            self.events.append(event)
            self.event_seen.set()

        @bot.bolt.action("socket_test_button")
        def button(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            self.actions.append(body)
            self.action_seen.set()


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "steward.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def socket_server(slack_api: SlackApi) -> Iterator[SocketModeServer]:
    server = SocketModeServer()
    server.start()
    slack_api.socket_url = server.url
    yield server
    server.stop()


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
def socket_settings(
    bot_settings: Settings, socket_server: SocketModeServer
) -> Settings:
    slack = bot_settings.slack.model_copy(
        update={"app_token": SecretStr(APP_TOKEN), "signing_secret": None}
    )
    return bot_settings.model_copy(
        update={"slack": slack, "server": ServerSettings(port=0, threads=2)}
    )


@pytest.fixture
def socket_service(socket_settings: Settings, received: Received) -> Iterator[Service]:
    steward: Steward = create_app(socket_settings)
    service = Service(steward, build_bot(steward, extra=[received.register]))
    service.start()
    yield service
    service.stop()
    steward.close()


def test_help_command_acked_with_usage(
    socket_service: Service, socket_server: SocketModeServer, slack_api: SlackApi
) -> None:
    socket_server.wait_for_connection(1)
    envelope = slash_command_envelope(slash_command_body("help", user_id=OWNER_ID))
    envelope_id = socket_server.send(envelope)
    ack = socket_server.ack_for(envelope_id)
    assert ack["envelope_id"] == envelope_id
    assert ack["payload"] == help_reply().message()
    opened = slack_api.calls_to("apps.connections.open")
    assert len(opened) == 1
    assert opened[0].token == APP_TOKEN


def test_event_reaches_listener_and_is_acked(
    socket_service: Service, socket_server: SocketModeServer, received: Received
) -> None:
    socket_server.wait_for_connection(1)
    event = {
        "type": "reaction_added",
        "user": OWNER_ID,
        "reaction": "eyes",
        "item": {"type": "message", "channel": "C0SECURITY", "ts": "1.000001"},
        "event_ts": "2.000002",
    }
    envelope_id = socket_server.send(events_api_envelope(event_body(event)))
    ack = socket_server.ack_for(envelope_id)
    assert ack == {"envelope_id": envelope_id}
    assert received.event_seen.wait(10)
    assert received.events == [event]


def test_button_click_reaches_listener(
    socket_service: Service, socket_server: SocketModeServer, received: Received
) -> None:
    socket_server.wait_for_connection(1)
    body = block_action_body(
        user_id=OWNER_ID,
        action_id="socket_test_button",
        value="42",
        channel_id="C0SECURITY",
        message_ts="1.000001",
    )
    envelope_id = socket_server.send(interactive_envelope(body))
    assert socket_server.ack_for(envelope_id) == {"envelope_id": envelope_id}
    assert received.action_seen.wait(10)
    assert received.actions[0]["actions"][0]["value"] == "42"


def test_http_routes_served_beside_socket(
    socket_service: Service, socket_server: SocketModeServer
) -> None:
    socket_server.wait_for_connection(1)
    assert socket_service.slack_checked.wait(10)
    ready = get(socket_service.url + "/readyz")
    assert ready.status == 200
    checks = checks_by_name(ready)
    assert checks[SOCKET_MODE_CHECK] == {
        "name": SOCKET_MODE_CHECK,
        "ok": True,
        "detail": "connected",
    }
    assert get(socket_service.url + "/healthz").status == 200
    assert get(socket_service.url + "/metrics").status == 200
    # Slack's requests arrive over the socket, so the HTTP route is not served.
    assert get(socket_service.url + "/slack/events").status == 404


def test_reconnects_when_asked(
    socket_service: Service, socket_server: SocketModeServer, slack_api: SlackApi
) -> None:
    first = socket_server.wait_for_connection(1)
    socket_server.ask_to_reconnect()
    second = socket_server.wait_for_connection(2)
    socket_server.wait_for_close(first)
    assert len(slack_api.calls_to("apps.connections.open")) == 2
    envelope = slash_command_envelope(slash_command_body("help", user_id=OWNER_ID))
    envelope_id = socket_server.send(envelope)
    assert socket_server.ack_for(envelope_id)["payload"] == help_reply().message()
    assert [message["envelope_id"] for message in second.received] == [envelope_id]


def test_stop_disconnects_and_stays_disconnected(
    socket_service: Service, socket_server: SocketModeServer, slack_api: SlackApi
) -> None:
    connection = socket_server.wait_for_connection(1)
    socket_service.stop()
    socket_server.wait_for_close(connection)
    handler = socket_service.socket_handler
    assert handler is not None
    assert handler.client.closed
    assert not handler.client.is_connected()
    assert len(socket_server.connections) == 1
    assert len(slack_api.calls_to("apps.connections.open")) == 1
    assert refused(socket_service.url + "/healthz")


def test_rejected_app_token_not_retried(
    socket_settings: Settings, socket_server: SocketModeServer, slack_api: SlackApi
) -> None:
    slack_api.fail_with("apps.connections.open", "invalid_auth", times=5)
    steward = create_app(socket_settings)
    service = Service(steward, build_bot(steward))
    try:
        service.start()
        assert service.slack_checked.wait(10)
        ready = get(service.url + "/readyz")
    finally:
        service.stop()
        steward.close()
    assert ready.status == 503
    assert checks_by_name(ready)[SOCKET_MODE_CHECK] == {
        "name": SOCKET_MODE_CHECK,
        "ok": False,
        "detail": "not connected: apps.connections.open failed: invalid_auth",
    }
    assert len(slack_api.calls_to("apps.connections.open")) == 1
    assert socket_server.connections == []
