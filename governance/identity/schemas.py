"""Serialisable views of identities for the CLI and the bot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from governance.identity.models import Identity


class IdentitySummary(BaseModel):
    """One line of an identity listing."""

    id: int
    source: str
    kind: str
    external_id: str
    name: str
    tier: str
    state: str
    owner: str | None
    managed: bool

    @classmethod
    def of(cls, identity: Identity) -> IdentitySummary:
        return cls(
            id=identity.id,
            source=identity.source,
            kind=identity.kind,
            external_id=identity.external_id,
            name=identity.name,
            tier=identity.tier.value,
            state=identity.state.value,
            owner=identity.owner.email if identity.owner else None,
            managed=identity.managed,
        )


class IdentityDetail(IdentitySummary):
    """Everything Steward stores about one identity."""

    description: str
    tier_reason: str
    detected_tier: str
    tier_override: str | None
    scope_summary: str
    owner_origin: str | None
    source_owner_email: str | None
    backup_owners: list[str]
    entities: list[str]
    created_at: datetime | None
    last_used_at: datetime | None
    never_used: bool
    first_seen_at: datetime
    last_seen_at: datetime
    state_changed_at: datetime
    gone_at: datetime | None
    claim_deadline: datetime | None
    certified_until: datetime | None
    revocation_stage: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, identity: Identity) -> IdentityDetail:
        summary = IdentitySummary.of(identity).model_dump()
        return cls(
            **summary,
            description=identity.description,
            tier_reason=identity.tier_reason,
            detected_tier=identity.detected_tier.value,
            tier_override=identity.tier_override.value
            if identity.tier_override
            else None,
            scope_summary=identity.scope_summary,
            owner_origin=identity.owner_origin.value if identity.owner_origin else None,
            source_owner_email=identity.source_owner_email,
            backup_owners=[person.email for person in identity.backup_owners],
            entities=[
                f"{entity.type.value}:{entity.key}" for entity in identity.entities
            ],
            created_at=identity.created_at,
            last_used_at=identity.last_used_at,
            never_used=identity.never_used,
            first_seen_at=identity.first_seen_at,
            last_seen_at=identity.last_seen_at,
            state_changed_at=identity.state_changed_at,
            gone_at=identity.gone_at,
            claim_deadline=identity.claim_deadline,
            certified_until=identity.certified_until,
            revocation_stage=identity.revocation_stage,
            attributes=identity.attributes,
        )
