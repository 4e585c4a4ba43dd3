"""Requests shaped as Slack sends them, signed with the app's signing secret.

Console mode builds its slash commands, button clicks and events here and
passes them through the Bolt app, so that they run exactly the listeners a
real workspace reaches. The tests send the same requests over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

TEAM_ID = "T0STEWARD"
APP_ID = "A0STEWARD"

_counter = itertools.count(1)


def signature(signing_secret: str, timestamp: str, body: str) -> str:
    """Return Slack's v0 signature of a request body sent at `timestamp`."""
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass(frozen=True)
class SlackRequest:
    """A request body with the headers Slack sends along with it."""

    body: str
    headers: dict[str, str]


def signed(
    signing_secret: str,
    body: str,
    content_type: str,
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
) -> SlackRequest:
    """Return `body` with a content type, a timestamp and a valid signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature(signing_secret, stamp, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return SlackRequest(body, headers)


def _trigger_id() -> str:
    return f"{next(_counter)}.{int(time.time())}.trigger"


def slash_command_body(
    text: str,
    *,
    user_id: str,
    command: str = "/nhi",
    channel_id: str = "C0CONSOLE",
    response_url: str = "",
) -> str:
    """Return the form body of a slash command invocation."""
    return urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "team_domain": "steward",
            "channel_id": channel_id,
            "channel_name": "console",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
    )


def block_action_body(
    *,
    user_id: str,
    action_id: str,
    value: str,
    channel_id: str,
    message_ts: str,
    block_id: str = "actions",
    message: dict[str, Any] | None = None,
    response_url: str = "",
    container_type: str = "message",
    selected_user: str | None = None,
) -> str:
    """Return the form body of a click on a button (or a user picker) in a message."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "action_ts": f"{time.time():.6f}",
    }
    if selected_user is not None:
        action.update(type="users_select", selected_user=selected_user)
    else:
        action.update(
            type="button", value=value, text={"type": "plain_text", "text": action_id}
        )
    container: dict[str, Any] = {"type": container_type}
    if container_type == "message":
        container.update(
            message_ts=message_ts, channel_id=channel_id, is_ephemeral=False
        )
    else:
        container["view_id"] = channel_id
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "unused",
        "container": container,
        "trigger_id": _trigger_id(),
        "team": {"id": TEAM_ID, "domain": "steward"},
        "enterprise": None,
        "is_enterprise_install": False,
        "response_url": response_url,
        "actions": [action],
    }
    if container_type == "message":
        payload["channel"] = {"id": channel_id, "name": "console"}
        payload["message"] = message or {"type": "message", "ts": message_ts}
    else:
        payload["view"] = {"id": channel_id, "type": "home"}
    return urlencode({"payload": json.dumps(payload)})


def view_submission_body(
    *, user_id: str, callback_id: str, private_metadata: str, values: dict[str, Any]
) -> str:
    """Return the form body of a modal's submission."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "steward"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "unused",
        "trigger_id": _trigger_id(),
        "view": {
            "id": f"V{next(_counter)}",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
        },
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], *, event_id: str | None = None) -> str:
    """Return the JSON body of an Events API delivery of `event`."""
    return json.dumps(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_counter):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "UBOT", "is_bot": True}],
        }
    )


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
