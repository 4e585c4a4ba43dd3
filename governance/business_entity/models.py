"""Business entities: the applications, projects and vendors NHIs serve."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import enum_column
from governance.person.models import Person


class EntityType(StrEnum):
    """Kind of business entity; the ITSM closes each with its own event."""

    APPLICATION = "application"
    PROJECT = "project"
    VENDOR = "vendor"


class EntityStatus(StrEnum):
    """Whether the entity still exists in the business."""

    ACTIVE = "active"
    CLOSED = "closed"


class BusinessEntity(Base):
    """An application, project or vendor; its key is unique per type."""

    __tablename__ = "business_entity"
    __table_args__ = (sa.UniqueConstraint("type", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[EntityType] = mapped_column(enum_column(EntityType))
    key: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    status: Mapped[EntityStatus] = mapped_column(
        enum_column(EntityStatus), default=EntityStatus.ACTIVE
    )
    owner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("person.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Person | None] = relationship()

    def __repr__(self) -> str:
        return f"<BusinessEntity {self.type}:{self.key}>"
