"""The bot's HTTP surface: signatures, health and readiness."""

from __future__ import annotations

import time

from bot.local_api import SlackApi
from bot.payloads import FORM, signed, slash_command_body
from tests.bot.conftest import OWNER_ID, SIGNING_SECRET, RunningServer


def test_forged_signature_rejected(server: RunningServer, slack_api: SlackApi) -> None:
    body = slash_command_body("help", user_id=OWNER_ID)
    request = signed("not-the-secret", body, FORM)
    response = server.send(request)
    assert response.status == 401
    assert slack_api.calls == []


def test_stale_timestamp_rejected(server: RunningServer, slack_api: SlackApi) -> None:
    body = slash_command_body("help", user_id=OWNER_ID)
    request = signed(SIGNING_SECRET, body, FORM, timestamp=int(time.time()) - 600)
    assert server.send(request).status == 401
    assert slack_api.calls == []


def test_tampered_body_rejected(server: RunningServer) -> None:
    request = signed(SIGNING_SECRET, slash_command_body("help", user_id=OWNER_ID), FORM)
    tampered = type(request)(request.body.replace("help", "orphans"), request.headers)
    assert server.send(tampered).status == 401


def test_signed_help_answered(server: RunningServer) -> None:
    request = signed(SIGNING_SECRET, slash_command_body("help", user_id=OWNER_ID), FORM)
    response = server.send(request)
    assert response.status == 200
    assert "/nhi" in response.body


def test_health_and_readiness(server: RunningServer) -> None:
    assert server.get("/healthz").status == 200
    ready = server.get("/readyz")
    assert ready.status == 200
    assert '"migrations"' in ready.body
    assert server.get("/nope").status == 404
