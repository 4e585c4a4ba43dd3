"""Discovery runs: one record per import or connector sync of a source."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import JSONDocument, enum_column


class RunStatus(StrEnum):
    """Outcome of a discovery run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"


def run_error(error: BaseException, *, first_line: bool = True) -> str:
    """Return the text stored as the error of a run that `error` ended.

    A KeyboardInterrupt or SystemExit (Ctrl-C, SIGTERM) is stored as an
    interruption, and an exception with an empty message as its type name.
    """
    if not isinstance(error, Exception):
        return f"interrupted ({type(error).__name__})"
    text = str(error)
    if not text:
        return type(error).__name__
    return text.splitlines()[0] if first_line else text


class DiscoveryRun(Base):
    """A reconciliation of one source's snapshot with the inventory."""

    __tablename__ = "discovery_run"
    __table_args__ = (
        sa.Index("ix_discovery_run_source_started", "source", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(100))
    method: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[RunStatus] = mapped_column(
        enum_column(RunStatus), default=RunStatus.RUNNING
    )
    actor: Mapped[str] = mapped_column(sa.String(320))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    seen_count: Mapped[int] = mapped_column(default=0)
    new_count: Mapped[int] = mapped_column(default=0)
    changed_count: Mapped[int] = mapped_column(default=0)
    unchanged_count: Mapped[int] = mapped_column(default=0)
    gone_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
