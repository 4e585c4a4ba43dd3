"""A loopback stand-in of Slack's Socket Mode WebSocket endpoint.

It follows the protocol of Slack's Socket Mode documentation. On each new
connection it sends `hello`. It then sends envelopes
`{"envelope_id", "type", "payload", "accepts_response_payload"}` (Events API
envelopes also carry `retry_attempt` and `retry_reason`) and records each
acknowledgement the client sends back (`{"envelope_id", "payload"?}`). A
`disconnect` message requests that the client open a new connection.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from bot.payloads import APP_ID

WAIT_SECONDS = 10.0


@dataclass
class Connection:
    """One client connection as the stand-in saw it."""

    number: int
    socket: ServerConnection
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class SocketModeServer:
    """The stand-in; give `url` to SlackApi.socket_url."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self._condition = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        # Slack's URLs have this shape: a path, a one-time ticket, the app id.
        return f"ws://127.0.0.1:{self.port}/link/?ticket=standin&app_id={APP_ID}"

    def start(self) -> None:
        self._server = serve(
            self._handle, "127.0.0.1", 0, compression=None, ping_interval=None
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        for connection in list(self.connections):
            if not connection.closed:
                connection.socket.close()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=WAIT_SECONDS)
        self._server = None

    # Serving

    def _handle(self, socket: ServerConnection) -> None:
        with self._condition:
            connection = Connection(len(self.connections) + 1, socket)
            self.connections.append(connection)
            self._condition.notify_all()
        socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 3600,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        try:
            for message in socket:
                with self._condition:
                    connection.received.append(json.loads(message))
                    self._condition.notify_all()
        except ConnectionClosed:
            # The SDK's client closes its TCP connection without a close frame.
            pass
        finally:
            with self._condition:
                connection.closed = True
                self._condition.notify_all()

    # Driving

    def wait_for_connection(self, number: int) -> Connection:
        """Wait until the `number`th connection (counting from 1) is open."""
        self._wait(lambda: len(self.connections) >= number, f"connection {number}")
        return self.connections[number - 1]

    def wait_for_close(self, connection: Connection) -> None:
        self._wait(lambda: connection.closed, f"connection {connection.number} closed")

    def send(self, envelope: dict[str, Any]) -> str:
        """Send an envelope on the newest connection; return its envelope id."""
        connection = self.connections[-1]
        connection.socket.send(json.dumps(envelope))
        return str(envelope["envelope_id"])

    def ask_to_reconnect(self, reason: str = "refresh_requested") -> None:
        """Send `disconnect`, as Slack does before it closes a connection."""
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-standin"},
        }
        self.connections[-1].socket.send(json.dumps(message))

    def ack_for(self, envelope_id: str) -> dict[str, Any]:
        """Wait for the acknowledgement of an envelope and return it."""
        found: list[dict[str, Any]] = []

        def acknowledged() -> bool:
            found[:] = [
                message
                for connection in self.connections
                for message in connection.received
                if message.get("envelope_id") == envelope_id
            ]
            return bool(found)

        self._wait(acknowledged, f"the acknowledgement of {envelope_id}")
        return found[0]

    def _wait(self, condition: Any, what: str) -> None:
        with self._condition:
            if not self._condition.wait_for(condition, timeout=WAIT_SECONDS):
                raise AssertionError(f"timed out waiting for {what}")


def _envelope_id() -> str:
    return str(uuid.uuid4())


def slash_command_envelope(form_body: str) -> dict[str, Any]:
    """Wrap a slash command (as its form body) the way Socket Mode sends it."""
    return {
        "envelope_id": _envelope_id(),
        "type": "slash_commands",
        "payload": dict(parse_qsl(form_body, keep_blank_values=True)),
        "accepts_response_payload": True,
    }


def interactive_envelope(form_body: str) -> dict[str, Any]:
    """Wrap an interaction (its `payload=` form body) the way Socket Mode sends it."""
    payload = json.loads(dict(parse_qsl(form_body))["payload"])
    return {
        "envelope_id": _envelope_id(),
        "type": "interactive",
        "payload": payload,
        "accepts_response_payload": payload.get("type") == "view_submission",
    }


def events_api_envelope(json_body: str, *, retry_attempt: int = 0) -> dict[str, Any]:
    """Wrap an Events API delivery (its JSON body) the way Socket Mode sends it."""
    return {
        "envelope_id": _envelope_id(),
        "type": "events_api",
        "payload": json.loads(json_body),
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }
