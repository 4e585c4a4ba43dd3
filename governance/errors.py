"""The exception tree of Steward.

Every error the core raises on purpose derives from `StewardError`. Connectors
translate vendor exceptions into the `ConnectorError` branch, so callers never
catch an hvac, botocore or jira exception directly.

    StewardError
    +-- ConfigurationError      a setting is missing or invalid
    +-- NotFoundError           an identity, person, entity or review is unknown
    +-- InvalidInputError       a value supplied by a user or a file is invalid
    +-- PermissionDeniedError   the actor may not perform the action
    +-- InvalidTransitionError  the lifecycle state machine rejects a change
    +-- ConflictError           the action conflicts with the current state
    +-- AuditChainError         the audit trail failed verification
    +-- ConnectorError          an external system failed
        +-- ConnectorUnavailableError   unreachable, timed out or sealed; retryable
        +-- ConnectorAuthError          Steward's own credentials were rejected
        +-- ConnectorPermissionError    Steward lacks a permission it needs
        +-- ConnectorRateLimitedError   throttled; retry after a delay
        +-- ConnectorNotFoundError      the remote object does not exist
        +-- ConnectorRequestError       the request was rejected as invalid
"""

from __future__ import annotations


class StewardError(Exception):
    """Base class of every error Steward raises on purpose."""


class ConfigurationError(StewardError):
    """A setting is missing or invalid; start-up stops."""


class NotFoundError(StewardError):
    """A referenced object does not exist."""

    def __init__(self, kind: str, reference: str) -> None:
        super().__init__(f"{kind} not found: {reference!r}")
        self.kind = kind
        self.reference = reference


class InvalidInputError(StewardError):
    """A value supplied by a user or read from a file is invalid."""


class PermissionDeniedError(StewardError):
    """The actor is not allowed to perform the action."""


class ConflictError(StewardError):
    """The action conflicts with the current state of an object."""


class InvalidTransitionError(ConflictError):
    """The lifecycle state machine rejects a requested state change."""

    def __init__(self, identity_id: int, state: str, requested: str) -> None:
        super().__init__(
            f"identity {identity_id} cannot move from {state!r} to {requested!r}"
        )
        self.identity_id = identity_id
        self.state = state
        self.requested = requested


class AuditChainError(StewardError):
    """The audit trail failed verification."""


class ConnectorError(StewardError):
    """An external system failed.

    `retryable` tells the remediation worker whether trying again later can
    succeed without a human changing something first.
    """

    retryable = False

    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message)
        self.connector = connector


class ConnectorUnavailableError(ConnectorError):
    """The system is unreachable, timed out, sealed or failing on its side."""

    retryable = True


class ConnectorAuthError(ConnectorError):
    """Steward's own credentials for the system were rejected or expired."""


class ConnectorPermissionError(ConnectorError):
    """Steward is authenticated but lacks a permission the action needs."""


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


class ConnectorNotFoundError(ConnectorError):
    """The remote object does not exist."""


class ConnectorRequestError(ConnectorError):
    """The system rejected the request as invalid."""
