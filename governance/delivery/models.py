"""Sent messages: where each message went, so a later change can edit it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument


class SentMessage(Base):
    """One message a notifier posted, addressed by its channel and message id.

    `key` names what the message shows (for example one page of a reviewer's
    review request), so that re-rendering it finds the message to edit.
    `items` contains the ids the message lists, in order. For Slack, `channel` is
    the conversation id and `message_ref` the message's `ts`.
    """

    __tablename__ = "sent_message"
    __table_args__ = (sa.UniqueConstraint("channel", "message_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    template: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(64))
    message_ref: Mapped[str] = mapped_column(sa.String(64))
    items: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    remediation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("remediation.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
