"""Process coordination kept in the database: leases and switches."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from governance.clock import utcnow
from governance.database import Base


class Lease(Base):
    """A named lease: the holder runs the work until `expires_at`.

    Another process takes the lease over once it expires, so a holder that
    dies stops blocking the work after one lease period.
    """

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Switch(Base):
    """A named on/off switch shared by every process, such as the emergency stop."""

    __tablename__ = "switch"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    changed_by: Mapped[str] = mapped_column(sa.String(320))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
