"""Translation of `jira` and requests exceptions into Steward's connector errors.

The `jira` library (read at version 3.10) raises JIRAError for every
response that is not a success, with the HTTP status in `status_code` (None
for errors the library detects itself) and the response in `response`.
Network failures come from requests. JIRAError's own text lists the response
headers, which can carry session cookies, so messages here are built from
the status and the parsed error list only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from jira.exceptions import JIRAError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

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

logger = logging.getLogger(__name__)

CONNECTOR = "jira"

# Checked in order, so a subclass must come before its base class.
_NETWORK_ERRORS: tuple[tuple[type[Exception], type[ConnectorError]], ...] = (
    (requests.exceptions.SSLError, ConnectorConfigError),
    (requests.exceptions.ConnectTimeout, ConnectorUnavailableError),
    (requests.exceptions.ReadTimeout, ConnectorOutcomeUnknownError),
    (requests.exceptions.Timeout, ConnectorOutcomeUnknownError),
    (requests.exceptions.ConnectionError, ConnectorOutcomeUnknownError),
    (requests.exceptions.ChunkedEncodingError, ConnectorOutcomeUnknownError),
    (requests.exceptions.ContentDecodingError, ConnectorOutcomeUnknownError),
    (requests.exceptions.JSONDecodeError, ConnectorOutcomeUnknownError),
    (requests.exceptions.InvalidURL, ConnectorConfigError),
    (requests.exceptions.MissingSchema, ConnectorConfigError),
    (requests.exceptions.InvalidSchema, ConnectorConfigError),
    (requests.exceptions.RequestException, ConnectorUnavailableError),
)

TRANSLATED: tuple[type[Exception], ...] = (
    JIRAError,
    *(vendor for vendor, _ in _NETWORK_ERRORS),
)


def error_class_for_status(status: int | None) -> type[ConnectorError]:
    """Return the connector error class for a JIRAError's HTTP status."""
    if status is None:
        return ConnectorRequestError
    if status == 401:
        return ConnectorAuthError
    if status == 403:
        return ConnectorPermissionError
    if status == 404:
        return ConnectorNotFoundError
    if status == 429:
        return ConnectorRateLimitedError
    # A gateway timeout comes from a proxy whose server may still finish the request.
    if status == 504:
        return ConnectorOutcomeUnknownError
    if status >= 500:
        return ConnectorUnavailableError
    return ConnectorRequestError


def error_class_for(error: Exception) -> type[ConnectorError]:
    """Return the connector error class that `error` translates to."""
    if isinstance(error, JIRAError):
        return error_class_for_status(error.status_code)
    if isinstance(error, requests.exceptions.ConnectionError) and _never_sent(error):
        return ConnectorUnavailableError
    for vendor, ours in _NETWORK_ERRORS:
        if isinstance(error, vendor):
            return ours
    raise TypeError(f"no translation for {type(error).__name__}")


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _never_sent(error: requests.exceptions.ConnectionError) -> bool:
    # urllib3 wraps a refused or unreachable connection in these; the request
    # never left, so it cannot have taken effect.
    return any(
        isinstance(cause, NewConnectionError | ConnectTimeoutError)
        for cause in _causes(error)
    )


def parse_retry_after(value: str | None) -> float | None:
    """Return a Retry-After header in seconds: a number or an HTTP date.

    Zero is valid and means "retry at once". None means no usable header.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.warning("ignoring an unreadable Retry-After header %r", text)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _response_document(error: JIRAError) -> dict[str, Any]:
    response = error.response
    if response is None:
        return {}
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def field_errors(error: JIRAError) -> dict[str, str]:
    """Return Jira's per-field messages of a rejected request, by field id."""
    errors = _response_document(error).get("errors")
    if not isinstance(errors, dict):
        return {}
    return {str(name): " ".join(str(text).split()) for name, text in errors.items()}


def _messages(error: JIRAError) -> list[str]:
    document = _response_document(error)
    messages = [str(item) for item in document.get("errorMessages") or []]
    if not messages and document.get("message"):
        messages.append(str(document["message"]))
    if not messages and not document and error.text:
        messages.append(" ".join(str(error.text).split())[:300])
    return messages


def _describe(error: JIRAError, fields: dict[str, str]) -> str:
    parts = [f"field {name}: {text}" for name, text in sorted(fields.items())]
    parts.extend(_messages(error))
    status = (
        f"HTTP {error.status_code}" if error.status_code is not None else "an error"
    )
    detail = "; ".join(parts) or "no details given"
    return f"Jira answered {status}: {detail}"


def translate(error: Exception, *, action: str) -> ConnectorError:
    """Return the connector error for an exception raised during `action`."""
    error_type = error_class_for(error)
    if not isinstance(error, JIRAError):
        detail = f"{type(error).__name__}: {error}"
        if error_type is ConnectorOutcomeUnknownError:
            detail += "; the request may have taken effect"
        elif error_type is ConnectorConfigError:
            detail += "; check jira.url, jira.verify_tls and jira.ca_bundle"
        return error_type(f"{action} failed: {detail}", connector=CONNECTOR)

    fields = field_errors(error)
    message = f"{action} failed: {_describe(error, fields)}"
    if error_type is ConnectorAuthError:
        message += "; check jira.user and jira.api_token, or jira.personal_access_token"
    if error_type is ConnectorRateLimitedError:
        headers = error.response.headers if error.response is not None else {}
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is not None:
            message += f"; Retry-After {retry_after:g} s"
        return ConnectorRateLimitedError(
            message, connector=CONNECTOR, retry_after=retry_after
        )
    if error_type is ConnectorRequestError:
        return ConnectorRequestError(message, connector=CONNECTOR, field_errors=fields)
    return error_type(message, connector=CONNECTOR)
