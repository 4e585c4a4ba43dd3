"""Errors raised by connectors, independent of any vendor SDK.

    ConnectorError
    +-- ConnectorUnavailableError   unreachable, timed out, sealed or failing
    |   |                           on its side; retryable
    |   +-- ConnectorOutcomeUnknownError  the request was sent but no response
    |                                     arrived, so it may have taken effect
    +-- ConnectorRateLimitedError   throttled; retry after `retry_after` seconds
    +-- ConnectorAuthError          Steward's own credentials were rejected
    +-- ConnectorPermissionError    Steward lacks a permission the call needs
    +-- ConnectorNotFoundError      the remote object does not exist
    +-- ConnectorRequestError       the request was rejected as invalid
    +-- ConnectorConfigError        a connector instance is misconfigured

Every connector maps each exception class of its SDK onto one of these, and
its tests prove the mapping is complete.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConnectorError(Exception):
    """An external system failed; `retryable` is whether a retry can succeed."""

    retryable = False

    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message)
        self.connector = connector


class ConnectorUnavailableError(ConnectorError):
    """The system is unreachable, timed out, sealed or failing on its side."""

    retryable = True


class ConnectorOutcomeUnknownError(ConnectorUnavailableError):
    """The request was sent, but no response arrived (a read timeout, a
    connection dropped mid-response), so the system may have carried it out.

    A caller that creates objects must look for the object before sending
    the request again.
    """


class ConnectorRateLimitedError(ConnectorError):
    """The system throttled Steward; `retry_after` is in seconds when known."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, connector=connector)
        self.retry_after = retry_after


class ConnectorAuthError(ConnectorError):
    """Steward's own credentials for the system were rejected or expired."""


class ConnectorPermissionError(ConnectorError):
    """Steward is authenticated but lacks a permission the action needs."""


class ConnectorNotFoundError(ConnectorError):
    """The remote object does not exist."""


class ConnectorRequestError(ConnectorError):
    """The system rejected the request as invalid.

    `field_errors` maps each rejected field to the system's message about it,
    when the system names fields.
    """

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        field_errors: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, connector=connector)
        self.field_errors: dict[str, str] = dict(field_errors or {})


class ConnectorConfigError(ConnectorError):
    """A configured connector instance cannot start with its settings."""
