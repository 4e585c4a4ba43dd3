"""The remediation outbox: every external side effect as a persistent row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument, enum_column
from governance.identity.models import Identity


class RemediationKind(StrEnum):
    """What the outbox row asks an external system to do."""

    REVOKE = "revoke"
    SCOPE_REDUCTION = "scope_reduction"
    MANUAL_REVOKE = "manual_revoke"
    TICKET = "ticket"
    NOTIFY = "notify"


class RemediationStatus(StrEnum):
    """Progress of one outbox row."""

    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    STAGED = "staged"
    OPEN = "open"
    SUCCEEDED = "succeeded"
    ALREADY_GONE = "already_gone"
    NEEDS_HUMAN = "needs_human"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Remediation(Base):
    """One side effect, written in the transaction of the decision behind it.

    `dedupe_key` is unique: writing the same side effect twice (a retried
    request, a double click) finds the existing row instead of adding one.
    """

    __tablename__ = "remediation"
    __table_args__ = (
        sa.Index("ix_remediation_status_next_attempt", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RemediationKind] = mapped_column(enum_column(RemediationKind))
    status: Mapped[RemediationStatus] = mapped_column(enum_column(RemediationStatus))
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    identity_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("identity.id", ondelete="SET NULL"), index=True
    )
    review_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("review.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    requested_by: Mapped[str] = mapped_column(sa.String(320))
    approved_by: Mapped[str | None] = mapped_column(sa.String(320))

    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(sa.String(200))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    stage: Mapped[str | None] = mapped_column(sa.String(40))
    deadline: Mapped[datetime | None]
    ticket_key: Mapped[str | None] = mapped_column(sa.String(64))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]

    identity: Mapped[Identity | None] = relationship()
