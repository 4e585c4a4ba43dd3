"""The scheduler: runs the due jobs while this process holds the lease.

Every process that runs a scheduler competes for the database lease named
SCHEDULER_LEASE; only its holder runs jobs. A frequent job renews the lease
every third of its period, so a holder that stops renewing (it died, hung or
lost the database) loses the lease within one period and another process
takes over. Each run is also recorded in the `scheduled_job` table, in a
transaction that renews the lease first. So a process that lost the lease
unnoticed starts no further run, and the next holder continues the schedule
from the stored last runs.

In the background (`start`), APScheduler fires each job on its interval in a
thread pool and the lease on a thread of its own. A process that does not
hold the lease keeps its jobs paused. When it takes the lease over, it
schedules each job at the time that the stored last run makes it due.
`run_pending` runs the due jobs synchronously instead, for tests and
`steward worker --once`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connectors.errors import ConnectorError
from governance.app import Steward
from governance.clock import utcnow
from governance.control.lease import acquire, release
from governance.errors import StewardError
from governance.remediation.runner import SCHEDULER_LEASE
from governance.scheduler.jobs import (
    DiscoveryRunner,
    Drainer,
    JobSpec,
    run_discovery,
    scheduled_jobs,
)
from governance.scheduler.models import JobStatus, ScheduledJob
from governance.scheduler.store import begin_run, finish_run, load_jobs, next_due

logger = logging.getLogger(__name__)

LEASE_JOB_ID = "renew_lease"
_LEASE_EXECUTOR = "lease"
JOB_THREADS = 4


@dataclass(frozen=True)
class JobResult:
    """The outcome of one run: `count` is what the job reported doing."""

    job_id: str
    status: JobStatus
    count: int | None
    error: str | None = None


class StewardScheduler:
    """Runs scheduled jobs, once each across every process on the database."""

    def __init__(
        self,
        app: Steward,
        *,
        holder_id: str,
        jobs: Sequence[JobSpec],
        lease_ttl: timedelta,
    ) -> None:
        self.app = app
        self.holder_id = holder_id
        self.jobs = {job.job_id: job for job in jobs}
        self.lease_ttl = lease_ttl
        self._holding = False
        self._holding_lock = threading.Lock()
        self._job_locks = {job_id: threading.Lock() for job_id in self.jobs}
        self._background = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(JOB_THREADS),
                _LEASE_EXECUTOR: ThreadPoolExecutor(1),
            },
            # Two instances, so that a tick arriving while a long run is still
            # going finds the job's lock taken and returns, where APScheduler
            # would log a warning for every skipped tick.
            job_defaults={
                "coalesce": True,
                "max_instances": 2,
                "misfire_grace_time": None,
            },
        )
        # Guards rescheduling against shutdown: APScheduler's shutdown holds
        # its job store lock while it waits for running jobs, so a running job
        # must not ask for that lock once shutdown has begun.
        self._schedule_lock = threading.Lock()
        self._stopping = False

    @property
    def holding(self) -> bool:
        """Whether this process held the lease at its last renewal."""
        with self._holding_lock:
            return self._holding

    # Lease

    def renew_lease(self) -> bool:
        """Take or renew the scheduler lease; return whether this process holds it."""
        with self.app.session() as session:
            holds_lease = acquire(
                session, SCHEDULER_LEASE, self.holder_id, self.lease_ttl
            )
        self._set_holding(holds_lease)
        return holds_lease

    def _set_holding(self, holds_lease: bool) -> None:
        with self._holding_lock:
            changed = holds_lease != self._holding
            self._holding = holds_lease
        if not changed:
            return
        logger.info(
            "scheduler %s %s the scheduler lease",
            self.holder_id,
            "holds" if holds_lease else "does not hold",
        )
        if self._background.running:
            if holds_lease:
                self._resume_jobs()
            else:
                self._pause_jobs()

    def _renew_in_background(self) -> None:
        try:
            self.renew_lease()
        except Exception:
            # The database may be down for a while; the next renewal tries again.
            logger.exception("scheduler %s failed to renew its lease", self.holder_id)
            self._set_holding(False)

    # Running jobs

    def run_pending(self, now: datetime | None = None) -> list[JobResult]:
        """Run every job due at `now` (default: the current time), in order.

        Returns the results of the jobs that ran; none run unless this
        process holds the lease. Database errors propagate.
        """
        moment = now or utcnow()
        if not self.renew_lease():
            logger.info(
                "scheduler %s ran no job: another process holds the scheduler lease",
                self.holder_id,
            )
            return []
        results = []
        for spec in self.jobs.values():
            result = self._run_if_due(spec, moment)
            if result is not None:
                results.append(result)
        return results

    def _run_if_due(self, spec: JobSpec, now: datetime) -> JobResult | None:
        lock = self._job_locks[spec.job_id]
        if not lock.acquire(blocking=False):
            logger.debug("job %s is already running in this process", spec.job_id)
            return None
        try:
            started_at = self._begin(spec, now)
            if started_at is None:
                return None
            return self._execute(spec, started_at)
        finally:
            lock.release()

    def _begin(self, spec: JobSpec, now: datetime) -> datetime | None:
        started_at = utcnow()
        with self.app.session() as session:
            holds_lease = acquire(
                session, SCHEDULER_LEASE, self.holder_id, self.lease_ttl
            )
            started = holds_lease and begin_run(
                session,
                spec.job_id,
                spec.interval,
                holder=self.holder_id,
                now=now,
                started_at=started_at,
            )
        self._set_holding(holds_lease)
        return started_at if started else None

    def _execute(self, spec: JobSpec, started_at: datetime) -> JobResult:
        clock = time.monotonic()
        count: int | None = None
        error: str | None = None
        # A failure is recorded and retried on the next run, and does not stop
        # the other jobs. Expected failures are logged without a traceback.
        try:
            count = spec.run()
            status = JobStatus.SUCCEEDED
        except (StewardError, ConnectorError) as failure:
            logger.error("job %s failed: %s", spec.job_id, failure)
            status = JobStatus.FAILED
            error = f"{type(failure).__name__}: {failure}"
        except Exception as failure:
            logger.exception("job %s failed", spec.job_id)
            status = JobStatus.FAILED
            error = f"{type(failure).__name__}: {failure}"
        seconds = time.monotonic() - clock
        with self.app.session() as session:
            finish_run(
                session,
                spec.job_id,
                holder=self.holder_id,
                started_at=started_at,
                finished_at=utcnow(),
                status=status,
                count=count,
                error=error,
            )
        if status is JobStatus.SUCCEEDED:
            logger.log(
                logging.INFO if count else logging.DEBUG,
                "job %s finished in %.1f s: count %s",
                spec.job_id,
                seconds,
                count,
            )
        return JobResult(spec.job_id, status, count, error)

    # Background

    def start(self) -> None:
        """Start the background threads; jobs run once the lease is taken."""
        # Jobs start paused: the first renewal resumes them, even when an
        # earlier `run_pending` left this process holding the lease.
        with self._holding_lock:
            self._holding = False
        for spec in self.jobs.values():
            self._background.add_job(
                self._fire,
                IntervalTrigger(seconds=spec.interval.total_seconds(), timezone=UTC),
                args=[spec.job_id],
                id=spec.job_id,
                name=spec.job_id,
                next_run_time=None,
            )
        renew_every = max(self.lease_ttl.total_seconds() / 3, 1.0)
        self._background.add_job(
            self._renew_in_background,
            IntervalTrigger(seconds=renew_every, timezone=UTC),
            id=LEASE_JOB_ID,
            name=LEASE_JOB_ID,
            executor=_LEASE_EXECUTOR,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        self._background.start()
        logger.info(
            "scheduler %s started with jobs: %s",
            self.holder_id,
            ", ".join(self.jobs) or "none",
        )

    def shutdown(self, wait: bool = True) -> None:
        """Stop the background threads, waiting for running jobs when `wait`.

        Gives the lease up afterwards, so another process can take over at once.
        """
        with self._schedule_lock:
            self._stopping = True
        if self._background.running:
            self._background.shutdown(wait=wait)
        if self.holding:
            with self.app.session() as session:
                release(session, SCHEDULER_LEASE, self.holder_id)
            self._set_holding(False)
        logger.info("scheduler %s stopped", self.holder_id)

    def _fire(self, job_id: str) -> None:
        spec = self.jobs[job_id]
        try:
            if self.holding:
                self._run_if_due(spec, utcnow())
            self._reschedule(spec)
        except Exception:
            # A database error: the job stays scheduled and tries again.
            logger.exception("job %s could not run", job_id)

    def _resume_jobs(self) -> None:
        with self.app.session() as session:
            stored = load_jobs(session)
        now = utcnow()
        for spec in self.jobs.values():
            due = next_due(stored.get(spec.job_id), spec.interval)
            self._move(spec.job_id, max(due, now) if due is not None else now)

    def _pause_jobs(self) -> None:
        for job_id in self.jobs:
            self._move(job_id, None)

    def _reschedule(self, spec: JobSpec) -> None:
        if not self.holding:
            return
        with self.app.session() as session:
            stored = session.get(ScheduledJob, spec.job_id)
        due = next_due(stored, spec.interval)
        now = utcnow()
        self._move(spec.job_id, max(due, now) if due is not None else now)

    def _move(self, job_id: str, run_at: datetime | None) -> None:
        """Set when APScheduler fires the job next; None pauses it."""
        with self._schedule_lock:
            if self._stopping or not self._background.running:
                return
            self._background.modify_job(job_id, next_run_time=run_at)


def build_scheduler(
    app: Steward,
    *,
    holder_id: str,
    drainers: Sequence[Drainer],
    discovery: DiscoveryRunner | None = run_discovery,
    lease_ttl: timedelta | None = None,
    drain_interval: timedelta | None = None,
) -> StewardScheduler:
    """Build the scheduler with every job the settings enable.

    `drainers` each carry out one kind of outbox row per `run_once` call;
    `discovery` runs one source's inventory sync (None: no syncs). The lease
    period and the drain interval default to the `scheduler` settings.
    """
    jobs = scheduled_jobs(
        app, drainers=drainers, discovery=discovery, drain_interval=drain_interval
    )
    ttl = lease_ttl or timedelta(seconds=app.settings.scheduler.lease_seconds)
    return StewardScheduler(app, holder_id=holder_id, jobs=jobs, lease_ttl=ttl)
