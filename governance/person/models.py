"""People: owners, reviewers, managers and security admins."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.clock import utcnow
from governance.database import Base


class Person(Base):
    """A human who can own NHIs, review them or approve actions."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    slack_user_id: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # What the chat directory last said of this person: active, restricted
    # (a guest), deactivated or missing (no user with this email), and when.
    chat_status: Mapped[str | None] = mapped_column(sa.String(16))
    chat_checked_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    manager_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("person.id", ondelete="SET NULL")
    )
    deactivated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    manager: Mapped[Person | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.email}>"
