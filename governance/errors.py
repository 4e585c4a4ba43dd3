"""The exception tree of Steward.

Every error the core raises on purpose derives from `StewardError`.

    StewardError
    +-- ConfigurationError      a setting is missing or invalid
    +-- NotFoundError           an identity, person, entity or review is unknown
    +-- InvalidInputError       a value supplied by a user or a file is invalid
    +-- PermissionDeniedError   the actor may not perform the action
    +-- ConflictError           the action conflicts with the current state
    |   +-- InvalidTransitionError  the lifecycle state machine rejects a change
    +-- AuditChainError         the audit trail failed verification
    +-- JobFailedError          a scheduled job ended without doing its work

Connector failures have their own tree in `connectors.errors`, rooted at
`ConnectorError`, so that connectors depend on nothing in the core.
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


class ConfirmationRequiredError(ConflictError):
    """The action would do mass damage and waits for an explicit confirmation."""


class JobFailedError(StewardError):
    """A scheduled job ended without doing its work; the scheduler records it."""
