"""Publishing the head of the audit trail outside the database.

Cutting events off the end of the chain leaves a chain that verifies, so the
head is logged and sent to the security channel at a regular interval. A
head whose sequence number goes down, or whose hash at a sequence number
already published changes, shows that the trail was truncated or rewritten.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from governance.app import Steward
from governance.audit.service import Actor, Head, read_head
from governance.clock import utcnow
from governance.remediation.notifications import Template
from governance.remediation.service import queue_notification

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_start(now: datetime, interval: timedelta) -> datetime:
    """Return the start of the interval containing `now`, counted from the epoch."""
    return _EPOCH + ((now - _EPOCH) // interval) * interval


def publish_audit_head(app: Steward, *, actor: Actor, interval: timedelta) -> Head:
    """Log the head at INFO and queue an `audit_head` message to the security channel.

    At most one message is queued per `interval`: its dedupe key names the
    interval, so running the job twice within one interval queues one.
    """
    now = utcnow()
    with app.session() as session:
        head = read_head(session)
        queue_notification(
            session,
            actor=actor,
            dedupe_key=f"audit_head:{interval_start(now, interval):%Y%m%dT%H%M%S}",
            recipient=None,
            template=Template.AUDIT_HEAD.value,
            context={"seq": head.seq, "hash": head.hash, "at": now.isoformat()},
        )
    logger.info(
        "audit head at %s: seq %s hash %s", now.isoformat(), head.seq, head.hash
    )
    return head
