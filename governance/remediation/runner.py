"""The worker loop: hold the scheduler lease, drain the outbox, repeat.

One pass runs the revocation worker, the ticket worker and the Jira sync, in
that order, so a revocation verified in a pass has its ticket closed in the
same pass when the ticket exists.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from connectors.registry import Connector, build_connectors
from governance.app import Steward
from governance.control.lease import acquire, release
from governance.discovery.runner import selected_instances
from governance.remediation.ticket_sync import TicketSync
from governance.remediation.tickets import ClientFactory, Throttle, TicketWorker
from governance.remediation.worker import RemediationWorker, RevokerLookup, WorkerStats

logger = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"


def default_worker_id() -> str:
    """Return an id naming this process: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_revokers(app: Steward) -> tuple[dict[str, Connector], RevokerLookup]:
    """Start the configured connectors and return them with a look-up by source."""
    connectors = build_connectors(selected_instances(app.settings))
    return connectors, connectors.get


class PassWorker(Protocol):
    """A worker the loop runs: one pass per call, self-contained."""

    def run_once(self) -> WorkerStats:
        """Carry out the due work once and return what happened."""
        ...


def build_workers(
    app: Steward,
    revokers: RevokerLookup,
    ticket_clients: ClientFactory,
    *,
    worker_id: str,
    lock_period: timedelta = timedelta(minutes=5),
) -> list[PassWorker]:
    """Return the revocation worker, the ticket worker and the Jira sync.

    The two Jira workers share one throttle, so a 429 pauses both.
    """
    throttle = Throttle()
    return [
        RemediationWorker(app, revokers, worker_id=worker_id, lock_period=lock_period),
        TicketWorker(
            app,
            ticket_clients,
            worker_id=worker_id,
            lock_period=lock_period,
            throttle=throttle,
        ),
        TicketSync(
            app,
            ticket_clients,
            worker_id=worker_id,
            lock_period=lock_period,
            throttle=throttle,
        ),
    ]


def _run_pass(workers: Sequence[PassWorker]) -> WorkerStats:
    total = WorkerStats()
    for worker in workers:
        stats = worker.run_once()
        total.taken += stats.taken
        for outcome, count in stats.outcomes.items():
            total.outcomes[outcome] = total.outcomes.get(outcome, 0) + count
    return total


def run_worker(
    app: Steward,
    workers: Sequence[PassWorker],
    *,
    worker_id: str,
    stop: threading.Event,
    interval: float = 5.0,
    lease_ttl: timedelta = timedelta(seconds=60),
    once: bool = False,
    on_pass: Callable[[WorkerStats], None] | None = None,
) -> None:
    """Run every worker in turn while this process holds the scheduler lease.

    Only the lease holder works, however many processes share the database; a
    process that finds the lease held waits and tries again every `interval`
    seconds, and takes over once the holder stops renewing it. A row taken
    by a worker that died is taken again once its lock period has passed.
    `on_pass` receives the counts of each pass, summed over the workers.
    """
    holding = False
    logger.info("worker %s started", worker_id)
    try:
        while not stop.is_set():
            with app.session() as session:
                now_holding = acquire(session, SCHEDULER_LEASE, worker_id, lease_ttl)
            if now_holding != holding:
                logger.info(
                    "worker %s %s the scheduler lease",
                    worker_id,
                    "holds" if now_holding else "does not hold",
                )
                holding = now_holding
            if holding:
                stats = _run_pass(workers)
                if stats.taken:
                    logger.info("worker %s: %s", worker_id, stats.outcomes)
                if on_pass is not None:
                    on_pass(stats)
            if once:
                break
            stop.wait(interval)
    finally:
        if holding:
            with app.session() as session:
                release(session, SCHEDULER_LEASE, worker_id)
        logger.info("worker %s stopped", worker_id)
