"""Sending signed Slack requests to the running server and reading the results."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from bot.blocks import MAX_VIEW_BLOCKS, check_blocks
from bot.local_api import SlackApi
from bot.payloads import (
    FORM,
    JSON,
    block_action_body,
    event_body,
    signed,
    slash_command_body,
)
from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.campaign.models import Campaign, Review
from governance.claim.models import Claim
from governance.remediation.models import Remediation
from tests.bot.conftest import SIGNING_SECRET, RunningServer


def wait_until(condition: Callable[[], bool], description: str) -> None:
    """Wait for work a listener does after acknowledging; fail after 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {description}")
        time.sleep(0.01)


def run_command(
    server: RunningServer, slack_api: SlackApi, text: str, user_id: str
) -> dict[str, Any]:
    """Send `/nhi TEXT` and return the acknowledgement's JSON body."""
    body = slash_command_body(
        text, user_id=user_id, response_url=slack_api.response_url
    )
    response = server.send(signed(SIGNING_SECRET, body, FORM))
    assert response.status == 200, response.body
    return json.loads(response.body) if response.body else {}


def run_slow_command(
    server: RunningServer, slack_api: SlackApi, text: str, user_id: str
) -> dict[str, Any]:
    """Send a subcommand that replies after "Working on it"; return that reply."""
    sent = len(slack_api.responses)
    ack = run_command(server, slack_api, text, user_id)
    assert ack["text"] == "Working on it…"
    wait_until(lambda: len(slack_api.responses) > sent, f"the answer to {text!r}")
    return slack_api.responses[sent]


def click(
    server: RunningServer,
    slack_api: SlackApi,
    user_id: str,
    element: dict[str, Any],
    *,
    in_view: bool = False,
) -> None:
    """Click a button element from a recorded message (or from the Home view)."""
    body = block_action_body(
        user_id=user_id,
        action_id=element["action_id"],
        value=element["value"],
        channel_id="V" + user_id if in_view else "C0CONSOLE",
        message_ts="" if in_view else "1.000001",
        response_url="" if in_view else slack_api.response_url,
        container_type="view" if in_view else "message",
    )
    response = server.send(signed(SIGNING_SECRET, body, FORM))
    assert response.status == 200, response.body


def open_home(server: RunningServer, user_id: str, *, tab: str = "home") -> None:
    event = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D" + user_id,
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    response = server.send(signed(SIGNING_SECRET, event_body(event), JSON))
    assert response.status == 200, response.body


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the buttons of a message or view by action id."""
    found: dict[str, dict[str, Any]] = {}
    for block in blocks:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found[element["action_id"]] = element
    return found


def texts(blocks: list[dict[str, Any]]) -> str:
    """Return every text of the blocks joined by newlines, for searching."""
    parts: list[str] = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(text.get("text", ""))
        parts.extend(field.get("text", "") for field in block.get("fields") or [])
        for element in block.get("elements") or []:
            if isinstance(element, dict) and "text" in element:
                inner = element["text"]
                parts.append(inner if isinstance(inner, str) else inner.get("text", ""))
    return "\n".join(parts)


def check_everything_sent(slack_api: SlackApi, acks: list[dict[str, Any]]) -> None:
    """Run check_blocks on every acknowledgement, response, message and view."""
    for ack in acks:
        check_blocks(ack.get("blocks") or [])
    for response in slack_api.responses:
        check_blocks(response.get("blocks") or [])
    for message in slack_api.messages:
        check_blocks(message.blocks)
    for view in slack_api.home_views.values():
        check_blocks(view["blocks"], limit=MAX_VIEW_BLOCKS)


def row_counts(steward: Steward) -> dict[str, int]:
    """Count the rows a command could add: audit events, campaigns, reviews..."""
    counts: dict[str, int] = {}
    with steward.session() as session:
        for name, model in (
            ("audit", AuditEvent),
            ("campaigns", Campaign),
            ("reviews", Review),
            ("claims", Claim),
            ("remediations", Remediation),
        ):
            counts[name] = session.scalar(sa.select(sa.func.count()).select_from(model))
    return counts
