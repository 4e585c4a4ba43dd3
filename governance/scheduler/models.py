"""The last run of each scheduled job, so that a restart resumes the schedule."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from governance.clock import utcnow
from governance.database import Base
from governance.database.base import enum_column


class JobStatus(StrEnum):
    """Outcome of a job's last run; `running` until it finishes."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ScheduledJob(Base):
    """One scheduled job by its stable id, with its last run.

    A run left `running` by a process that died is due again at once. Jobs
    are idempotent, so the repeated run queues no message twice.
    """

    __tablename__ = "scheduled_job"

    job_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    last_started_at: Mapped[datetime]
    last_finished_at: Mapped[datetime | None]
    last_status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_count: Mapped[int | None]
    last_holder: Mapped[str] = mapped_column(sa.String(200))
    run_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
