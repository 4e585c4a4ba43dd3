"""Errors raised by connectors, independent of any vendor SDK.

    ConnectorError
    +-- ConnectorUnavailableError   unreachable, timed out, sealed or failing
    |                               on its side; retryable
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


class ConnectorError(Exception):
    """An external system failed; `retryable` is whether a retry can succeed."""

    retryable = False

    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message)
        self.connector = connector


class ConnectorUnavailableError(ConnectorError):
    """The system is unreachable, timed out, sealed or failing on its side."""

    retryable = True


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
    """The system rejected the request as invalid."""


class ConnectorConfigError(ConnectorError):
    """A configured connector instance cannot start with its settings."""
