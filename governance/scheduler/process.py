"""Running the scheduler: as `steward worker`, or inside another process.

Both start the configured connectors as revokers, drain the outbox with a
RemediationWorker (plus any other drainers given) and run every scheduled
job through one StewardScheduler, so only the lease holder works however
many processes run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from connectors.registry import Connector
from governance.app import Steward
from governance.remediation.runner import default_worker_id, load_revokers
from governance.remediation.worker import RemediationWorker, RevokerLookup
from governance.scheduler.jobs import Drainer
from governance.scheduler.scheduler import JobResult, StewardScheduler, build_scheduler

logger = logging.getLogger(__name__)

DEFAULT_LOCK_PERIOD = timedelta(minutes=5)
# How often the waiting main thread checks the stop event.
STOP_POLL_SECONDS = 1.0


def build_worker_scheduler(
    app: Steward,
    revokers: RevokerLookup,
    *,
    worker_id: str,
    drainers: Sequence[Drainer] = (),
    lease_ttl: timedelta | None = None,
    drain_interval: timedelta | None = None,
    lock_period: timedelta = DEFAULT_LOCK_PERIOD,
) -> StewardScheduler:
    """Build the scheduler with a RemediationWorker first among the drainers.

    A revocation left in progress by a worker that died is taken again
    `lock_period` after it was taken.
    """
    worker = RemediationWorker(
        app, revokers, worker_id=worker_id, lock_period=lock_period
    )
    return build_scheduler(
        app,
        holder_id=worker_id,
        drainers=[worker, *drainers],
        lease_ttl=lease_ttl,
        drain_interval=drain_interval,
    )


def run_worker(
    app: Steward,
    revokers: RevokerLookup,
    *,
    worker_id: str,
    stop: threading.Event,
    drainers: Sequence[Drainer] = (),
    interval: float | None = None,
    lease_ttl: timedelta | None = None,
    lock_period: timedelta = DEFAULT_LOCK_PERIOD,
    once: bool = False,
) -> list[JobResult]:
    """Run the scheduler until `stop` is set, or run the due jobs once.

    `drainers` run after the RemediationWorker in each outbox pass.
    `interval` is the seconds between outbox passes (default: the
    `scheduler.drain_outbox_interval_seconds` setting). With `once`, returns
    the results of the jobs that ran; otherwise returns an empty list.
    """
    scheduler = build_worker_scheduler(
        app,
        revokers,
        worker_id=worker_id,
        drainers=drainers,
        lease_ttl=lease_ttl,
        drain_interval=timedelta(seconds=interval) if interval else None,
        lock_period=lock_period,
    )
    logger.info("worker %s started", worker_id)
    results: list[JobResult] = []
    try:
        if once:
            results = scheduler.run_pending()
        else:
            scheduler.start()
            while not stop.wait(STOP_POLL_SECONDS):
                pass
    finally:
        scheduler.shutdown(wait=True)
        logger.info("worker %s stopped", worker_id)
    return results


@dataclass
class RunningScheduler:
    """A scheduler running in the threads of another process, with its connectors."""

    scheduler: StewardScheduler
    connectors: dict[str, Connector] = field(default_factory=dict)

    def stop(self, wait: bool = True) -> None:
        """Stop the jobs, give the lease up and close the connectors."""
        try:
            self.scheduler.shutdown(wait=wait)
        finally:
            for connector in self.connectors.values():
                connector.close()


def start_in_process(
    app: Steward,
    *,
    holder_id: str | None = None,
    drainers: Sequence[Drainer] = (),
) -> RunningScheduler:
    """Start the same scheduler as `steward worker` in this process's threads.

    For `steward serve` and similar long-running processes: call `stop()` on
    the result before exiting. Raises ConnectorConfigError, starting nothing,
    when a configured connector cannot start.
    """
    connectors, lookup = load_revokers(app)
    try:
        scheduler = build_worker_scheduler(
            app,
            lookup,
            worker_id=holder_id or default_worker_id(),
            drainers=drainers,
        )
        scheduler.start()
    except BaseException:
        for connector in connectors.values():
            connector.close()
        raise
    return RunningScheduler(scheduler, connectors)
