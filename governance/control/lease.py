"""Database leases: one holder at a time for work that must run once.

A lease row names its holder and an expiry. The holder renews it before it
expires; any other process takes it over only after it expired, so when the
holder dies the work resumes elsewhere within one lease period.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.clock import utcnow
from governance.control.models import Lease

logger = logging.getLogger(__name__)


def acquire(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease; return whether `holder` holds it now.

    The caller commits. The conditional UPDATE is atomic on both backends, so
    two processes racing for an expired lease never both win.
    """
    now = utcnow()
    taken = session.execute(
        sa.update(Lease)
        .where(Lease.name == name)
        .where(sa.or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return True
    exists = session.scalar(sa.select(Lease.name).where(Lease.name == name))
    if exists is not None:
        return False
    # First use: insert; a concurrent insert by another process fails on the key.
    try:
        with session.begin_nested():
            session.add(
                Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
            )
    except sa.exc.IntegrityError:
        return False
    return True


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up so that another process can take it at once."""
    session.execute(
        sa.update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def current_holder(session: Session, name: str) -> str | None:
    """Return who holds an unexpired lease, if anyone."""
    lease = session.get(Lease, name)
    if lease is None or lease.expires_at < utcnow():
        return None
    return lease.holder
