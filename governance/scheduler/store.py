"""Reading and writing each job's last run, and when the job is due next.

A job is due at once when it never ran or its last run never finished (the
process running it died). Otherwise it is due one interval after its last
run started, or sooner after a failure: FAILURE_RETRY after the failed
start, when that is shorter than the interval. The next run follows from the
stored start, so a restarted process neither runs a job early nor skips one
that fell due while it was down. Runs missed during a long outage are
coalesced into one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.scheduler.models import JobStatus, ScheduledJob

logger = logging.getLogger(__name__)

FAILURE_RETRY = timedelta(minutes=5)
MAX_ERROR_LENGTH = 2000


def next_due(job: ScheduledJob | None, interval: timedelta) -> datetime | None:
    """Return when the job is due next; None means due at once."""
    if job is None or job.last_status is JobStatus.RUNNING:
        return None
    wait = interval
    if job.last_status is JobStatus.FAILED:
        wait = min(interval, FAILURE_RETRY)
    return job.last_started_at + wait


def is_due(job: ScheduledJob | None, interval: timedelta, now: datetime) -> bool:
    """Return whether the job is due at `now`."""
    due = next_due(job, interval)
    return due is None or due <= now


def load_jobs(session: Session) -> dict[str, ScheduledJob]:
    """Return every stored job by id."""
    return {job.job_id: job for job in session.scalars(sa.select(ScheduledJob))}


def begin_run(
    session: Session,
    job_id: str,
    interval: timedelta,
    *,
    holder: str,
    now: datetime,
    started_at: datetime,
) -> bool:
    """Record that `holder` starts the job, if it is due at `now`; return whether.

    The row is locked for update, so when two transactions check the same
    job, the second one reads the start that the first one recorded. The
    caller commits.
    """
    job = session.get(ScheduledJob, job_id, with_for_update=True)
    if not is_due(job, interval, now):
        return False
    if job is None:
        job = ScheduledJob(job_id=job_id, run_count=0)
        session.add(job)
    job.last_started_at = started_at
    job.last_finished_at = None
    job.last_status = JobStatus.RUNNING
    job.last_error = None
    job.last_count = None
    job.last_holder = holder
    job.run_count += 1
    session.flush()
    return True


def finish_run(
    session: Session,
    job_id: str,
    *,
    holder: str,
    started_at: datetime,
    finished_at: datetime,
    status: JobStatus,
    count: int | None,
    error: str | None,
) -> bool:
    """Record the end of a run started by `holder`; return False if superseded.

    A run that another holder started again in the meantime (after this
    process lost the lease) keeps the newer record.
    """
    job = session.get(ScheduledJob, job_id, with_for_update=True)
    if job is None or job.last_holder != holder or job.last_started_at != started_at:
        logger.warning(
            "job %s was started again by %s; the outcome of the run started at %s "
            "is not recorded",
            job_id,
            job.last_holder if job is not None else "nobody",
            started_at.isoformat(),
        )
        return False
    job.last_finished_at = finished_at
    job.last_status = status
    job.last_count = count
    job.last_error = error[:MAX_ERROR_LENGTH] if error is not None else None
    return True
