"""The bot's HTTP surface: signatures, health and readiness."""

from __future__ import annotations

import logging
import time

import pytest

from bot.local_api import SlackApi
from bot.payloads import FORM, JSON, signed, slash_command_body
from tests.bot.conftest import OWNER_ID, SIGNING_SECRET, RunningServer, post


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


BAD_TIMESTAMP = {
    "Content-Type": FORM,
    "X-Slack-Request-Timestamp": "abc",
    "X-Slack-Signature": "v0=00",
}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"payload=%7Bnot+json", {"Content-Type": FORM}, 401),
        (b"payload=%5B1%2C2%5D", {"Content-Type": FORM}, 401),
        (b"\xff\xfe{", {"Content-Type": JSON}, 400),
        (b"token=x&text=help", BAD_TIMESTAMP, 401),
    ],
    ids=["bad-payload-json", "payload-list", "not-utf8", "timestamp-abc"],
)
def test_malformed_unsigned_rejected(
    server: RunningServer,
    slack_api: SlackApi,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    caplog.set_level(logging.INFO)
    response = post(server.url + "/slack/events", body, headers)
    assert response.status == status
    assert slack_api.calls == []
    assert not [record for record in caplog.records if record.levelno > logging.WARNING]
    assert not [record for record in caplog.records if record.exc_info]


def test_signed_malformed_payload_rejected(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for body in ["payload=%7Bnot+json", "payload=%5B1%2C2%5D"]:
        response = server.send(signed(SIGNING_SECRET, body, FORM))
        assert response.status == 400
    assert not [record for record in caplog.records if record.levelno > logging.WARNING]


def test_rejection_log_omits_body(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = slash_command_body(
        "private words", user_id=OWNER_ID, response_url="http://127.0.0.1:9/reply"
    )
    assert server.send(signed("not-the-secret", body, FORM)).status == 401
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/slack/events" in logged
    assert "127.0.0.1" in logged
    assert "invalid signature" in logged
    assert "private" not in logged
    assert "reply" not in logged
