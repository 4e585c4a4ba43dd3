"""The interfaces between the governance core and external systems.

A source lists the identities a system contains (metadata only, never a secret
value or a token id). A revoker takes one identity's credential away and
checks that it is gone. Both speak in the plain types defined here, so the
core never handles a vendor SDK object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

Tier = Literal["privileged", "standard"]
AttributeValue = str | int | float | bool | None | list[str]


class DiscoveredIdentity(BaseModel):
    """One identity as a source reports it.

    `external_id` is the source's own identifier (an accessor, an access key
    id, an ARN), unique within the source. `tier` is None when the source
    cannot judge it; the core then applies its default. Entity fields carry
    business entity keys (application, project, vendor) when the source reports
    them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=512)
    name: str = Field(min_length=1, max_length=512)
    description: str = ""
    owner_email: str | None = None
    tier: Tier | None = None
    tier_reason: str = ""
    scope_summary: str = ""
    managed: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    never_used: bool = False
    application: str | None = None
    project: str | None = None
    vendor: str | None = None
    attributes: Mapping[str, AttributeValue] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _sort_attributes(
        cls, value: Mapping[str, AttributeValue]
    ) -> Mapping[str, AttributeValue]:
        # A stable order makes equal reports serialise, and so compare, equal.
        return dict(sorted(value.items()))

    @field_validator("created_at", "last_used_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        # Sources without a time zone report UTC.
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class HealthState(StrEnum):
    """Result of a connector's health check."""

    OK = "ok"
    FAILING = "failing"


@dataclass(frozen=True)
class HealthStatus:
    """Whether a connector can reach and authenticate to its system."""

    state: HealthState
    detail: str = ""


@runtime_checkable
class Source(Protocol):
    """A system that can list the identities it holds."""

    name: str

    def discover(self) -> Iterator[DiscoveredIdentity]:
        """Yield every identity the system holds, to the end of every page.

        Raises a ConnectorError when the listing cannot be completed; a
        partial listing must never look like a complete one.
        """
        ...

    def check_health(self) -> HealthStatus:
        """Check that the system is reachable and accepts Steward's credentials."""
        ...


@dataclass(frozen=True)
class IdentityRef:
    """The identifiers a revoker needs to find one identity's credential."""

    source: str
    kind: str
    external_id: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


class RevocationOutcome(StrEnum):
    """Explicit results of a revocation attempt."""

    REVOKED = "revoked"
    ALREADY_GONE = "already_gone"
    DISABLED = "disabled"
    MANUAL = "manual"
    RETRYABLE = "retryable"
    NEEDS_HUMAN = "needs_human"
    RESTORED = "restored"


@dataclass(frozen=True)
class RevocationResult:
    """The outcome of one call, with what was checked and when to retry.

    REVOKED and ALREADY_GONE are only returned after a follow-up look-up found
    the credential gone. DISABLED is the first stage of a staged revocation
    (the credential no longer works and can still be restored). MANUAL means
    the stored object is a copy and the credential must be revoked at the
    system that issued it. RESTORED is the result of a staged revoker's undo
    that found the credential enabled again.
    """

    outcome: RevocationOutcome
    detail: str = ""
    retry_after: float | None = None
    gone_at: datetime | None = None


@runtime_checkable
class Revoker(Protocol):
    """A system that can revoke an identity's credential and verify it."""

    name: str

    def revoke(self, identity: IdentityRef) -> RevocationResult:
        """Revoke the credential and verify the result by a follow-up look-up."""
        ...


@runtime_checkable
class StagedRevoker(Revoker, Protocol):
    """A revoker whose first stage disables and whose second stage deletes.

    `grace_period` is how long a disabled credential waits before `finish`
    deletes it; `undo` can restore it until then.
    """

    grace_period: timedelta

    def finish(self, identity: IdentityRef) -> RevocationResult:
        """Delete a credential disabled earlier; verify it is gone."""
        ...

    def undo(self, identity: IdentityRef) -> RevocationResult:
        """Re-enable a credential disabled earlier."""
        ...
