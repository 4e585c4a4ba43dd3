"""Fixtures for the bot: the Web API stand-in, the Bolt app and the HTTP server."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.app import build_bot
from bot.context import Bot
from bot.local_api import SlackApi, running_slack_api
from bot.payloads import SlackRequest
from bot.server import StewardWsgi, create_server
from governance.app import Steward, create_app
from governance.settings import Settings

SIGNING_SECRET = "test-signing-secret"
SECURITY_CHANNEL = "C0SECURITY"
ORPHAN_CHANNEL = "C0ORPHANS"
OWNER_ID = "U0OWNER"
ADMIN_ID = "U0ADMIN"
GUEST_ID = "U0GUEST"
STRANGER_ID = "U0STRANGER"


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    with running_slack_api() as api:
        api.add_user(
            OWNER_ID, "owner@example.com", name="Olive Owner", tz="Europe/Paris"
        )
        api.add_user(ADMIN_ID, "security@example.com", name="Sam Security")
        api.add_user(GUEST_ID, "guest@example.com", name="Gus Guest", restricted=True)
        api.add_user(STRANGER_ID, "stranger@example.com", name="Stan Stranger")
        api.add_channel(SECURITY_CHANNEL)
        api.add_channel(ORPHAN_CHANNEL)
        yield api


@pytest.fixture
def bot_settings(database_url: str, slack_api: SlackApi) -> Settings:
    return Settings(
        database_url=database_url,
        security={"admins": ["security@example.com"]},  # type: ignore[arg-type]
        slack={  # type: ignore[arg-type]
            "bot_token": "xoxb-test-token",
            "signing_secret": SIGNING_SECRET,
            "api_url": slack_api.url,
            "security_channel": SECURITY_CHANNEL,
            "orphan_channel": ORPHAN_CHANNEL,
            "timeout_seconds": 2,
        },
    )


@pytest.fixture
def steward(bot_settings: Settings) -> Iterator[Steward]:
    app = create_app(bot_settings)
    yield app
    app.close()


@pytest.fixture
def bot(steward: Steward) -> Bot:
    return build_bot(steward)


@dataclass
class Response:
    status: int
    body: str


@dataclass
class RunningServer:
    url: str

    def send(self, request: SlackRequest, path: str = "/slack/events") -> Response:
        return post(self.url + path, request.body.encode(), request.headers)

    def get(self, path: str) -> Response:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as answer:
                return Response(answer.status, answer.read().decode())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read().decode())


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Response(answer.status, answer.read().decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read().decode())


@pytest.fixture
def server(bot: Bot, steward: Steward) -> Iterator[RunningServer]:
    application = StewardWsgi(steward, bot=bot)
    http = create_server(
        application, host="127.0.0.1", port=0, threads=4, max_body_bytes=1_048_576
    )
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    yield RunningServer(f"http://127.0.0.1:{http.effective_port}")
    # Closing from the server's own loop thread stops it at once; closing from
    # here races with its select() on the sockets being closed.
    http.trigger.pull_trigger(http.close)
    thread.join(timeout=5)
