"""Serving a WSGI application with waitress on loopback, for HTTP tests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Any

import waitress


@contextmanager
def serve_wsgi(application: Any) -> Iterator[str]:
    """Serve `application` on 127.0.0.1 at a free port; yield its base URL."""
    server: Any = waitress.create_server(application, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Closing from the loop's own thread wakes the loop at once, and the
        # loop ends when no socket is left.
        server.trigger.pull_trigger(server.close)
        thread.join(timeout=30)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "waitress did not stop"


@dataclass(frozen=True)
class HttpResponse:
    """Status, headers and the JSON document of one response."""

    status: int
    headers: Message
    document: dict[str, Any]


# No proxy from the environment: every request stays on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def send(
    url: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> HttpResponse:
    """Send one request with urllib and return its response, errors included.

    A body given as an iterable of chunks is sent with chunked transfer
    encoding, without Content-Length.
    """
    request = urllib.request.Request(
        url, data=body, headers=dict(headers or {}), method=method
    )
    try:
        with _OPENER.open(request, timeout=60) as response:
            return HttpResponse(
                response.status, response.headers, json.loads(response.read())
            )
    except urllib.error.HTTPError as error:
        with error:
            return HttpResponse(error.code, error.headers, json.loads(error.read()))
