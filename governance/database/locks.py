"""Transaction-scoped locks that serialise one kind of writer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

# Arbitrary constants naming Steward's PostgreSQL advisory locks. The audit
# trail's lock is governance.audit.service.AUDIT_LOCK_KEY.
PEOPLE_IMPORT_LOCK_KEY = 0x53545750
ENTITY_IMPORT_LOCK_KEY = 0x53545745


def lock_for_transaction(session: Session, key: int) -> None:
    """Wait for the lock `key`, which is released when the transaction ends.

    PostgreSQL takes an advisory lock. SQLite needs none, because every
    transaction takes the database write lock when it begins.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
