"""Business events from the ITSM: an entity closed, with its deprovisioning."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.business_entity.models import BusinessEntity, EntityType
from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument, enum_column


class EventType(StrEnum):
    """The business events Steward acts on."""

    PROJECT_CLOSED = "project.closed"
    VENDOR_OFFBOARDED = "vendor.offboarded"
    APPLICATION_DECOMMISSIONED = "application.decommissioned"

    @property
    def entity_type(self) -> EntityType:
        return _ENTITY_TYPES[self]


_ENTITY_TYPES = {
    EventType.PROJECT_CLOSED: EntityType.PROJECT,
    EventType.VENDOR_OFFBOARDED: EntityType.VENDOR,
    EventType.APPLICATION_DECOMMISSIONED: EntityType.APPLICATION,
}


class EventStatus(StrEnum):
    """Whether the event's revocations were queued or wait for approval."""

    APPLIED = "applied"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"


class BusinessEvent(Base):
    """One received event; `event_id` is the sender's id, unique, for replays."""

    __tablename__ = "business_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    type: Mapped[EventType] = mapped_column(enum_column(EventType))
    entity_id: Mapped[int] = mapped_column(
        sa.ForeignKey("business_entity.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus))
    actor: Mapped[str] = mapped_column(sa.String(320))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoke_count: Mapped[int] = mapped_column(default=0)
    kept_count: Mapped[int] = mapped_column(default=0)
    decided_by: Mapped[str | None] = mapped_column(sa.String(320))
    decided_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)

    entity: Mapped[BusinessEntity] = relationship()
