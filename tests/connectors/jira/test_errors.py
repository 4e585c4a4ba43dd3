"""Translation of `jira` and requests exceptions into connector errors."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import time_machine
from jira import exceptions as jira_errors
from jira.exceptions import JIRAError
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from connectors.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorOutcomeUnknownError,
    ConnectorPermissionError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorUnavailableError,
)
from connectors.jira.errors import (
    TRANSLATED,
    error_class_for,
    error_class_for_status,
    parse_retry_after,
    translate,
)

REQUESTS_EXCEPTIONS = sorted(
    (
        member
        for _, member in inspect.getmembers(requests.exceptions, inspect.isclass)
        if issubclass(member, requests.exceptions.RequestException)
    ),
    key=lambda member: member.__name__,
)


def response(status: int, document: object, **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(document).encode()
    answer.headers.update(headers)
    answer.url = "https://jira.example.com/rest/api/2/issue"
    return answer


def jira_error(status: int, document: object, **headers: str) -> JIRAError:
    answer = response(status, document, **headers)
    return JIRAError("server text", status_code=status, url=answer.url, response=answer)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, ConnectorRequestError),
        (400, ConnectorRequestError),
        (401, ConnectorAuthError),
        (403, ConnectorPermissionError),
        (404, ConnectorNotFoundError),
        (409, ConnectorRequestError),
        (429, ConnectorRateLimitedError),
        (500, ConnectorUnavailableError),
        (502, ConnectorUnavailableError),
        (503, ConnectorUnavailableError),
        (504, ConnectorOutcomeUnknownError),
    ],
)
def test_status_translation(status: int | None, expected: type[ConnectorError]) -> None:
    assert error_class_for_status(status) is expected


def test_jira_defines_its_exceptions() -> None:
    classes = [
        member
        for _, member in inspect.getmembers(jira_errors, inspect.isclass)
        if issubclass(member, Exception) and member.__module__ == jira_errors.__name__
    ]
    # NotJIRAInstanceError is a programming error, raised before any request.
    assert {member.__name__ for member in classes} == {
        "JIRAError",
        "NotJIRAInstanceError",
    }
    assert JIRAError in TRANSLATED


@pytest.mark.parametrize("vendor", REQUESTS_EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_requests_exception_translates(vendor: type[Exception]) -> None:
    if issubclass(vendor, requests.exceptions.JSONDecodeError):
        error: Exception = vendor("not JSON", "<html>", 0)
    else:
        error = vendor("boom")
    translated = translate(error, action="creating")
    assert isinstance(translated, ConnectorError)
    assert type(translated) is not ConnectorError
    assert translated.connector == "jira"
    assert str(translated).startswith("creating failed: ")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.exceptions.ReadTimeout("read"), ConnectorOutcomeUnknownError),
        (requests.exceptions.ConnectTimeout("connect"), ConnectorUnavailableError),
        (requests.exceptions.SSLError("tls"), ConnectorConfigError),
        (
            requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError())
            ),
            ConnectorOutcomeUnknownError,
        ),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(
                    None,  # type: ignore[arg-type]
                    "/rest/api/2/issue",
                    NewConnectionError(None, "refused"),  # type: ignore[arg-type]
                )
            ),
            ConnectorUnavailableError,
        ),
    ],
)
def test_sent_or_not_sent(error: Exception, expected: type[ConnectorError]) -> None:
    assert error_class_for(error) is expected


def test_field_errors_named() -> None:
    error = jira_error(
        400,
        {
            "errorMessages": [],
            "errors": {
                "customfield_10010": "Team is required.",
                "labels": "Field 'labels' cannot be set.",
            },
        },
    )
    translated = translate(error, action="creating the issue")
    assert isinstance(translated, ConnectorRequestError)
    assert translated.field_errors == {
        "customfield_10010": "Team is required.",
        "labels": "Field 'labels' cannot be set.",
    }
    assert str(translated) == (
        "creating the issue failed: Jira answered HTTP 400: "
        "field customfield_10010: Team is required.; "
        "field labels: Field 'labels' cannot be set."
    )


def test_message_leaves_out_headers() -> None:
    error = jira_error(
        500,
        {"errorMessages": ["Internal server error"]},
        **{"Set-Cookie": "JSESSIONID=session-secret"},
    )
    assert "JSESSIONID" in str(error)  # the library's own text shows headers
    translated = translate(error, action="reading")
    assert (
        str(translated)
        == "reading failed: Jira answered HTTP 500: Internal server error"
    )
    assert translated.__cause__ is None


@pytest.mark.parametrize(
    ("header", "expected"), [("0", 0.0), ("30", 30.0), ("2.5", 2.5)]
)
def test_rate_limit_keeps_retry_after(header: str, expected: float) -> None:
    translated = translate(
        jira_error(429, {"errorMessages": []}, **{"Retry-After": header}),
        action="creating",
    )
    assert isinstance(translated, ConnectorRateLimitedError)
    assert translated.retry_after == expected
    assert translated.retryable


def test_auth_error_names_settings() -> None:
    translated = translate(jira_error(401, {}), action="reading")
    assert isinstance(translated, ConnectorAuthError)
    assert "jira.api_token" in str(translated)
    assert not translated.retryable


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("soon", None), ("-5", 0.0), ("12", 12.0)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_date() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        assert parse_retry_after(format_datetime(now + timedelta(seconds=90))) == 90.0
        assert parse_retry_after(format_datetime(now - timedelta(hours=1))) == 0.0


def test_unknown_exception_rejected() -> None:
    with pytest.raises(TypeError, match="no translation for ValueError"):
        error_class_for(ValueError("x"))
