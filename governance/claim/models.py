"""Claims: a person asking to become the owner of an orphaned identity."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import enum_column
from governance.identity.models import Identity
from governance.person.models import Person


class ClaimStatus(StrEnum):
    """Progress of a claim; privileged identities wait for a security admin."""

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"


class Claim(Base):
    """A claim of ownership; `open_identity_id` allows one pending claim each."""

    __tablename__ = "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        sa.ForeignKey("identity.id", ondelete="CASCADE"), index=True
    )
    open_identity_id: Mapped[int | None] = mapped_column(unique=True)
    claimant_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE")
    )
    status: Mapped[ClaimStatus] = mapped_column(enum_column(ClaimStatus))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(sa.String(320))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)

    identity: Mapped[Identity] = relationship()
    claimant: Mapped[Person] = relationship()
