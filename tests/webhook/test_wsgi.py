"""Reading a bounded request body and checking its media type."""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import Any

import pytest

from governance.webhook.wsgi import HttpError, check_json_media_type, read_body


class CountingStream(io.BytesIO):
    """A request stream that records how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def environ(body: bytes, **extra: Any) -> dict[str, Any]:
    return {"wsgi.input": CountingStream(body), **extra}


def test_declared_length_read_exactly() -> None:
    request = environ(b'{"a": 1}trailing', CONTENT_LENGTH="8")
    assert read_body(request, 100) == b'{"a": 1}'
    assert request["wsgi.input"].bytes_read == 8


def test_declared_length_over_limit_reads_nothing() -> None:
    request = environ(b"x" * 200, CONTENT_LENGTH="200")
    with pytest.raises(HttpError) as raised:
        read_body(request, 100)
    assert raised.value.status is HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert request["wsgi.input"].bytes_read == 0


def test_terminated_stream_reads_limit_plus_one() -> None:
    request = environ(b"x" * 10_000, **{"wsgi.input_terminated": True})
    with pytest.raises(HttpError) as raised:
        read_body(request, 100)
    assert raised.value.status is HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert request["wsgi.input"].bytes_read == 101


def test_terminated_stream_within_limit() -> None:
    request = environ(b"x" * 100, **{"wsgi.input_terminated": True})
    assert read_body(request, 100) == b"x" * 100


def test_undeclared_length_unterminated_is_empty() -> None:
    request = environ(b"ignored")
    assert read_body(request, 100) == b""
    assert request["wsgi.input"].bytes_read == 0


@pytest.mark.parametrize("declared", ["-1", "ten", "1e3", "\u0661"])
def test_invalid_content_length(declared: str) -> None:
    with pytest.raises(HttpError, match="invalid Content-Length") as raised:
        read_body(environ(b"x", CONTENT_LENGTH=declared), 100)
    assert raised.value.status is HTTPStatus.BAD_REQUEST


def test_body_shorter_than_declared() -> None:
    with pytest.raises(HttpError, match="shorter than its Content-Length"):
        read_body(environ(b"abc", CONTENT_LENGTH="10"), 100)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON; charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/cloudevents+json",
    ],
)
def test_json_media_types_accepted(content_type: str) -> None:
    check_json_media_type({"CONTENT_TYPE": content_type})


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"],
)
def test_other_media_types_rejected(content_type: str) -> None:
    with pytest.raises(HttpError, match="expected Content-Type") as raised:
        check_json_media_type({"CONTENT_TYPE": content_type})
    assert raised.value.status is HTTPStatus.UNSUPPORTED_MEDIA_TYPE


def test_other_charset_rejected() -> None:
    with pytest.raises(HttpError, match="expected charset utf-8"):
        check_json_media_type({"CONTENT_TYPE": "application/json; charset=latin-1"})
