"""A loopback stand-in of the Slack Web API, for console mode and the tests.

It responds to the methods Steward calls the way Slack does (JSON with `ok`,
an `error` code on failure, HTTP 429 with Retry-After when rate limited),
records every call, and fails on demand. It keeps just enough state to be
consistent: users and user groups, channels, the messages posted and edited,
and the published Home views.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from bot.client import APP_TOKEN_PREFIX


@dataclass
class Call:
    """One request received: the method name and its parameters."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Failure:
    """A canned answer to the next calls of one method.

    With `after_effect`, the call takes effect (a message is posted) before
    the stand-in waits `delay` seconds and answers, which is how a timeout
    with an unknown outcome looks to the client.
    """

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    after_effect: bool = False
    remaining: int = 1


@dataclass
class Message:
    """A message as the stand-in stores it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    thread_ts: str | None
    user: str
    edits: int = 0


class SlackApi:
    """The stand-in's state; `url` is the base URL to give the WebClient."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: set[str] = set()
        self.archived: set[str] = set()
        self.not_joined: set[str] = set()
        self.messages: list[Message] = []
        self.ephemeral: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        self.opened_views: list[dict[str, Any]] = []
        # The WebSocket URL that apps.connections.open returns (Socket Mode).
        self.socket_url: str | None = None
        # Scopes sent in the X-OAuth-Scopes header of each response to a call
        # made with a bot token, as Slack does. None sends no header.
        self.granted_scopes: list[str] | None = None
        self._failures: dict[str, list[Failure]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # Arranging

    def add_user(
        self,
        user_id: str,
        email: str,
        *,
        name: str | None = None,
        deleted: bool = False,
        restricted: bool = False,
        tz: str = "UTC",
        tz_offset: int = 0,
    ) -> dict[str, Any]:
        user = {
            "id": user_id,
            "name": name or email.split("@", maxsplit=1)[0],
            "real_name": name or email.split("@", maxsplit=1)[0],
            "deleted": deleted,
            "is_bot": False,
            "is_restricted": restricted,
            "is_ultra_restricted": False,
            "tz": tz,
            "tz_offset": tz_offset,
            "profile": {"email": email, "display_name": name or ""},
        }
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str) -> None:
        self.channels.add(channel_id)

    def fail(self, method: str, failure: Failure) -> None:
        """Respond to the next `failure.remaining` calls of `method` with `failure`."""
        with self._lock:
            self._failures.setdefault(method, []).append(failure)

    def fail_with(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next calls of `method` with `ok: false` and `error`."""
        self.fail(method, Failure(body={"ok": False, "error": error}, remaining=times))

    def rate_limit(self, method: str, retry_after: int, *, times: int = 1) -> None:
        self.fail(
            method,
            Failure(
                body={"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
                remaining=times,
            ),
        )

    # Inspecting

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def messages_in(self, channel: str) -> list[Message]:
        return [message for message in self.messages if message.channel == channel]

    def dm_channel(self, user_id: str) -> str:
        """Return the id of the direct message conversation with a user."""
        return "D" + user_id

    # Serving

    def start(self) -> None:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/api/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def response_url(self) -> str:
        """A response_url that records what Bolt's `respond` sends."""
        return self.url.removesuffix("api/") + "respond"

    # Answering

    def _take_failure(self, method: str) -> Failure | None:
        with self._lock:
            queue = self._failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.pop(0)
            return failure

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def handle(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.calls.append(Call(method, params, token))
        token_error = _token_type_error(method, token)
        if token_error is not None:
            return 200, {}, {"ok": False, "error": token_error}
        headers = self._scope_headers(token)
        failure = self._take_failure(method)
        if failure is not None and not failure.after_effect:
            time.sleep(failure.delay)
            return (
                failure.status,
                {**headers, **failure.headers},
                failure.body or {"ok": True},
            )
        answer = self._answer(method, params)
        if failure is not None:
            time.sleep(failure.delay)
            return (
                failure.status,
                {**headers, **failure.headers},
                failure.body or answer,
            )
        return 200, headers, answer

    def _scope_headers(self, token: str | None) -> dict[str, str]:
        if self.granted_scopes is None or (token or "").startswith(APP_TOKEN_PREFIX):
            return {}
        return {"X-OAuth-Scopes": ",".join(self.granted_scopes)}

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            result: dict[str, Any] = handler(params)
        return result

    def _resolve_channel(self, channel: str) -> tuple[str | None, str | None]:
        if channel in self.users:
            return self.dm_channel(channel), None
        if channel.startswith("D") and channel[1:] in self.users:
            return channel, None
        if channel in self.archived:
            return None, "is_archived"
        if channel in self.not_joined:
            return None, "not_in_channel"
        if channel not in self.channels:
            return None, "channel_not_found"
        return channel, None

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, error = self._resolve_channel(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": error}
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=str(params.get("text", "")),
            blocks=_as_list(params.get("blocks")),
            metadata=_as_dict(params.get("metadata")),
            thread_ts=params.get("thread_ts"),
            user="UBOT",
        )
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        for message in self.messages:
            if message.channel == channel and message.ts == ts:
                message.text = str(params.get("text", message.text))
                if "blocks" in params:
                    message.blocks = _as_list(params.get("blocks"))
                message.edits += 1
                return {"ok": True, "channel": channel, "ts": ts}
        return {"ok": False, "error": "message_not_found"}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self.ephemeral.append(params)
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, error = self._resolve_channel(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": error}
        oldest = float(params.get("oldest") or 0)
        found = [
            {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "user": message.user,
                **(
                    {"metadata": message.metadata}
                    if message.metadata and params.get("include_all_metadata")
                    else {}
                ),
            }
            for message in reversed(self.messages)
            if message.channel == channel and float(message.ts) >= oldest
        ]
        limit = int(params.get("limit") or 100)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = str(params.get("users", "")).split(",")
        if len(users) != 1 or users[0] not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": self.dm_channel(users[0])}}

    def _users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email", "")).lower()
        for user in self.users.values():
            if user["profile"]["email"].lower() == email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(str(params.get("usergroup", "")))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user_id", ""))
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        view = _as_dict(params.get("view")) or {}
        self.home_views[user_id] = view
        return {"ok": True, "view": {"id": "V" + user_id, **view}}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = _as_dict(params.get("view")) or {}
        self.opened_views.append(view)
        return {"ok": True, "view": {"id": f"V{len(self.opened_views)}", **view}}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_url}


# Methods that take an app-level token (xapp-); every other method takes a
# bot token, and Slack answers `not_allowed_token_type` to the wrong kind.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


def _token_type_error(method: str, token: str | None) -> str | None:
    if not token:
        return "not_authed"
    is_app_token = token.startswith(APP_TOKEN_PREFIX)
    if is_app_token != (method in APP_TOKEN_METHODS):
        return "not_allowed_token_type"
    return None


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def _as_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if value else None


def _handler_for(api: SlackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                params = json.loads(raw or "{}")
            else:
                params = dict(parse_qsl(raw))
            if self.path.startswith("/respond"):
                with api._lock:
                    api.responses.append(params)
                self._send(200, {}, {"ok": True})
                return
            method = self.path.removeprefix("/api/").split("?")[0]
            authorization = self.headers.get("Authorization", "")
            token = authorization.removeprefix("Bearer ") or params.get("token")
            status, headers, body = api.handle(method, params, token)
            self._send(status, headers, body)

        do_GET = do_POST

        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up waiting, as a timed-out client does.
                pass

    return Handler


@contextmanager
def running_slack_api() -> Iterator[SlackApi]:
    """Start a stand-in on a free loopback port and stop it afterwards."""
    api = SlackApi()
    api.start()
    try:
        yield api
    finally:
        api.stop()
