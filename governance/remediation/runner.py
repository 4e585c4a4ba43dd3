"""Parts shared by every worker process: the lease name, its id and its revokers.

The loop itself is `governance.scheduler.process.run_worker`.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from connectors.registry import Connector, build_connectors
from governance.app import Steward
from governance.discovery.runner import selected_instances
from governance.remediation.ticket_sync import TicketSync
from governance.remediation.tickets import ClientFactory, Throttle, TicketWorker
from governance.remediation.worker import RevokerLookup

logger = logging.getLogger(__name__)

# The database lease whose holder runs the scheduled jobs and drains the outbox.
SCHEDULER_LEASE = "scheduler"


def default_worker_id() -> str:
    """Return an id naming this process: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_revokers(app: Steward) -> tuple[dict[str, Connector], RevokerLookup]:
    """Start the configured connectors and return them with a look-up by source."""
    connectors = build_connectors(selected_instances(app.settings))
    return connectors, connectors.get


def ticket_drainers(
    app: Steward,
    ticket_clients: ClientFactory,
    *,
    worker_id: str,
    lock_period: timedelta = timedelta(minutes=5),
) -> list[TicketWorker | TicketSync]:
    """Return the ticket worker and the Jira sync, sharing one throttle.

    They run after the revocation worker in each outbox pass, so a
    revocation verified in a pass has its ticket closed in the same pass.
    A 429 from Jira pauses both.
    """
    throttle = Throttle()
    return [
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
