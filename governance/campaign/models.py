"""Certification campaigns and the reviews they contain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument, enum_column
from governance.identity.models import Identity, RiskTier
from governance.person.models import Person


class CampaignStatus(StrEnum):
    """Whether a campaign still accepts decisions."""

    OPEN = "open"
    CLOSED = "closed"


class ReviewStatus(StrEnum):
    """Progress of one review."""

    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Decision(StrEnum):
    """Outcome of a review, from the answers to its two questions."""

    CERTIFY = "certify"
    REDUCE_SCOPE = "reduce_scope"
    REVOKE = "revoke"


class Campaign(Base):
    """A certification campaign over the identities due in a tier and source."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        enum_column(CampaignStatus), default=CampaignStatus.OPEN, index=True
    )
    tier: Mapped[RiskTier | None] = mapped_column(enum_column(RiskTier))
    source: Mapped[str | None] = mapped_column(sa.String(100))
    opened_by: Mapped[str] = mapped_column(sa.String(320))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    closed_by: Mapped[str | None] = mapped_column(sa.String(320))
    closed_at: Mapped[datetime | None]


class Review(Base):
    """One identity's certification inside a campaign.

    `open_identity_id` equals `identity_id` while the review is pending and is
    NULL otherwise; its unique constraint keeps each identity in at most one
    open review on both SQLite and PostgreSQL.
    """

    __tablename__ = "review"
    __table_args__ = (sa.Index("ix_review_campaign_status", "campaign_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE")
    )
    identity_id: Mapped[int] = mapped_column(
        sa.ForeignKey("identity.id", ondelete="CASCADE"), index=True
    )
    open_identity_id: Mapped[int | None] = mapped_column(unique=True)
    reviewer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[ReviewStatus] = mapped_column(
        enum_column(ReviewStatus), default=ReviewStatus.PENDING
    )
    due_at: Mapped[datetime]
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)

    decision: Mapped[Decision | None] = mapped_column(enum_column(Decision))
    application_active: Mapped[bool | None]
    scope_minimal: Mapped[bool | None]
    comment: Mapped[str | None] = mapped_column(sa.Text)
    decided_by: Mapped[str | None] = mapped_column(sa.String(320))
    decided_at: Mapped[datetime | None]

    reminder_count: Mapped[int] = mapped_column(default=0)
    last_reminded_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    identity: Mapped[Identity] = relationship()
    reviewer: Mapped[Person | None] = relationship()
