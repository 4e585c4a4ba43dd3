"""The inventory: one row per non-human identity, never deleted."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.business_entity.models import BusinessEntity
from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument, enum_column
from governance.lifecycle import IdentityState
from governance.person.models import Person


class RiskTier(StrEnum):
    """Certification tier: privileged identities are reviewed more often."""

    PRIVILEGED = "privileged"
    STANDARD = "standard"


class OwnerOrigin(StrEnum):
    """Origin of the current owner; an owner set in Steward wins over a source's."""

    SOURCE = "source"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    INHERITED = "inherited"


identity_backup_owner = sa.Table(
    "identity_backup_owner",
    Base.metadata,
    sa.Column(
        "identity_id",
        sa.ForeignKey("identity.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "person_id", sa.ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    ),
)

identity_entity_link = sa.Table(
    "identity_entity_link",
    Base.metadata,
    sa.Column(
        "identity_id",
        sa.ForeignKey("identity.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "entity_id",
        sa.ForeignKey("business_entity.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Identity(Base):
    """A non-human identity: metadata and identifiers only, never a secret value.

    `external_id` is what the source calls it (an accessor, an access key id,
    an ARN, a SaaS key id), unique within `source`. `tier` is the effective
    tier: `tier_override` when set, otherwise `detected_tier`.
    """

    __tablename__ = "identity"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id"),
        sa.Index("ix_identity_source_state", "source", "state"),
        sa.Index("ix_identity_state_tier", "state", "tier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(512))
    name: Mapped[str] = mapped_column(sa.String(512))
    description: Mapped[str] = mapped_column(sa.Text, default="")

    tier: Mapped[RiskTier] = mapped_column(enum_column(RiskTier))
    tier_reason: Mapped[str] = mapped_column(sa.Text, default="")
    detected_tier: Mapped[RiskTier] = mapped_column(enum_column(RiskTier))
    detected_tier_reason: Mapped[str] = mapped_column(sa.Text, default="")
    tier_override: Mapped[RiskTier | None] = mapped_column(enum_column(RiskTier))
    tier_override_reason: Mapped[str | None] = mapped_column(sa.Text)
    scope_summary: Mapped[str] = mapped_column(sa.Text, default="")

    managed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    never_used: Mapped[bool] = mapped_column(default=False)

    state: Mapped[IdentityState] = mapped_column(enum_column(IdentityState))
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    owner_origin: Mapped[OwnerOrigin | None] = mapped_column(enum_column(OwnerOrigin))
    source_owner_email: Mapped[str | None] = mapped_column(sa.String(320))

    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    gone_at: Mapped[datetime | None]
    orphaned_at: Mapped[datetime | None]
    claim_deadline: Mapped[datetime | None]
    certified_at: Mapped[datetime | None]
    certified_until: Mapped[datetime | None]
    review_due_at: Mapped[datetime | None] = mapped_column(index=True)
    revocation_stage: Mapped[str | None] = mapped_column(sa.String(40))

    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    backup_owners: Mapped[list[Person]] = relationship(
        secondary=identity_backup_owner, order_by=Person.email
    )
    entities: Mapped[list[BusinessEntity]] = relationship(
        secondary=identity_entity_link, order_by=BusinessEntity.key
    )

    def __repr__(self) -> str:
        return f"<Identity {self.id} {self.source}:{self.external_id} {self.state}>"
