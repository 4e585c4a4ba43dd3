"""Parts shared by every worker process: the lease name, its id and its revokers.

The loop itself is `governance.scheduler.process.run_worker`.
"""

from __future__ import annotations

import logging
import os
import socket

from connectors.registry import Connector, build_connectors
from governance.app import Steward
from governance.discovery.runner import selected_instances
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
