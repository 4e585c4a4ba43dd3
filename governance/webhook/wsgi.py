"""Small WSGI helpers: request headers, a bounded body, JSON responses."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

JSON_MEDIA_TYPE = "application/json"


class HttpError(Exception):
    """A request rejected with `status`; the message is sent to the client."""

    def __init__(
        self,
        status: HTTPStatus,
        message: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


def header(environ: WSGIEnvironment, name: str) -> str:
    """Return the request header `name` (any case), or "" when it is absent."""
    key = name.upper().replace("-", "_")
    if key not in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
        key = f"HTTP_{key}"
    return str(environ.get(key, ""))


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """Read the request body, at most `limit` bytes.

    A declared Content-Length above `limit` is rejected before any byte is
    read. Without Content-Length the body is read only when the server marks
    the stream as terminated (`wsgi.input_terminated`), and then at most
    `limit + 1` bytes, enough to tell that it is too large.
    """
    declared = header(environ, "Content-Length").strip()
    stream = environ["wsgi.input"]
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid Content-Length header")
        length = int(declared)
        if length > limit:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {length} bytes exceeds the limit of {limit} bytes",
            )
        body = bytes(stream.read(length))
        if len(body) < length:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, "body is shorter than its Content-Length"
            )
        return body
    if not environ.get("wsgi.input_terminated"):
        # Without Content-Length a read from an unterminated stream could
        # block until the client closes the connection, so the body is empty.
        return b""
    body = bytes(stream.read(limit + 1))
    if len(body) > limit:
        raise HttpError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"body exceeds the limit of {limit} bytes",
        )
    return body


def check_json_media_type(environ: WSGIEnvironment) -> None:
    """Raise HttpError 415 unless the body is declared as JSON in UTF-8."""
    declared = header(environ, "Content-Type")
    media_type, _, parameters = declared.partition(";")
    media_type = media_type.strip().lower()
    if media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        raise HttpError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"expected Content-Type {JSON_MEDIA_TYPE}, got {declared or 'none'!r}",
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in {"utf-8", "utf8"}:
            raise HttpError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"expected charset utf-8, got {charset!r}",
            )


def json_response(
    start_response: StartResponse,
    status: HTTPStatus,
    document: dict[str, Any],
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """Start a JSON response and return its body."""
    body = json.dumps(document).encode("utf-8")
    start_response(
        f"{status.value} {status.phrase}",
        [
            ("Content-Type", f"{JSON_MEDIA_TYPE}; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers,
        ],
    )
    return [body]
