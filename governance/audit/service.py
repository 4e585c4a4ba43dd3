"""Appending to the audit trail.

Appends are serialised so that two writers never fork the chain: on
PostgreSQL with a transaction-scoped advisory lock, on SQLite by the write lock
that every transaction takes at BEGIN IMMEDIATE. The head read under the lock
is cached for the rest of the transaction, so a batch of events costs one
lock and one head query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.chain import (
    GENESIS_HASH,
    canonical_text,
    details_json,
    format_timestamp,
)
from governance.audit.models import AuditEvent
from governance.clock import utcnow
from governance.database.bulk import insert_rows
from governance.errors import InvalidInputError

# Arbitrary constant naming Steward's audit lock among PostgreSQL advisory locks.
AUDIT_LOCK_KEY = 0x53545744

_HEAD_KEY = "steward.audit_head"

# The columns of audit_event in the order `_chain` writes them.
AUDIT_COLUMNS = (
    "seq",
    "occurred_at",
    "actor",
    "actor_type",
    "action",
    "object_type",
    "object_id",
    "before_state",
    "after_state",
    "reason",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class Actor:
    """The performer of an action: a person by email, or a named system job."""

    name: str
    kind: Literal["person", "system"] = "person"
    # Set by a surface that authenticated the person as a security admin by
    # other means than `security.admins` (a Slack admin user id or group).
    security_admin: bool = False

    @classmethod
    def person(cls, email: str, *, security_admin: bool = False) -> Actor:
        return cls(name=email, kind="person", security_admin=security_admin)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(name=f"system:{job}", kind="system")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Head:
    """The last event of the trail: its sequence number and hash."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def read_head(session: Session) -> Head:
    """Return the current head; seq 0 and the genesis hash for an empty trail."""
    row = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return Head(0, GENESIS_HASH)
    return Head(row.seq, row.hash)


def _transaction_key(session: Session) -> tuple[object, object]:
    # A savepoint that rolls back discards its events, so the cached head is
    # valid only inside the transaction and savepoint that cached it.
    return (session.get_transaction(), session.get_nested_transaction())


def _locked_head(session: Session) -> Head:
    key = _transaction_key(session)
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and cached[0] == key:
        head: Head = cached[1]
        return head
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    head = read_head(session)
    session.info[_HEAD_KEY] = (key, head)
    return head


class EventSpec(NamedTuple):
    """An audit event before the writer gives it a place in the chain.

    A named tuple rather than a frozen dataclass: bulk writers build one per
    row, and it constructs about twice as fast.
    """

    action: str
    object_type: str
    object_id: str
    reason: str = ""
    before_state: str | None = None
    after_state: str | None = None
    details: dict[str, Any] | None = None


def _chain(
    session: Session, actor: Actor, specs: Sequence[EventSpec]
) -> list[tuple[Any, ...]]:
    """Return the rows of the events, in AUDIT_COLUMNS order, chained to the head.

    `details` is in the rows as its canonical JSON text, which is also what
    gets stored: it is computed once for the hash and reused.
    """
    head = _locked_head(session)
    now = utcnow()
    # Every event of the batch shares the timestamp, so it is formatted once.
    occurred_at = format_timestamp(now)
    rows: list[tuple[Any, ...]] = []
    seq, previous_hash = head.seq, head.hash
    for spec in specs:
        seq += 1
        try:
            details = details_json(spec.details or {})
        except (TypeError, ValueError) as error:
            raise InvalidInputError(
                f"audit details are not plain JSON: {error}"
            ) from None
        text = canonical_text(
            seq=seq,
            occurred_at=occurred_at,
            actor=actor.name,
            actor_type=actor.kind,
            action=spec.action,
            object_type=spec.object_type,
            object_id=spec.object_id,
            before_state=spec.before_state,
            after_state=spec.after_state,
            reason=spec.reason,
            details=details,
            prev_hash=previous_hash,
        )
        event_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
        rows.append(
            (
                seq,
                now,
                actor.name,
                actor.kind,
                spec.action,
                spec.object_type,
                spec.object_id,
                spec.before_state,
                spec.after_state,
                spec.reason,
                details,
                previous_hash,
                event_hash,
            )
        )
        previous_hash = event_hash
    return rows


def record_many(session: Session, actor: Actor, specs: Sequence[EventSpec]) -> int:
    """Append several events by one actor with one bulk insert; return the count.

    The events are written at once, unlike `record`, whose event is flushed
    with the session's other pending changes.
    """
    if not specs:
        return 0
    rows = _chain(session, actor, specs)
    insert_rows(
        session,
        cast(sa.Table, AuditEvent.__table__),
        AUDIT_COLUMNS,
        rows,
        json_text=("details",),
    )
    last = rows[-1]
    session.info[_HEAD_KEY] = (_transaction_key(session), Head(last[0], last[-1]))
    return len(rows)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    reason: str = "",
    before_state: str | None = None,
    after_state: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the trail in the caller's transaction."""
    spec = EventSpec(
        action=action,
        object_type=object_type,
        object_id=object_id,
        reason=reason,
        before_state=before_state,
        after_state=after_state,
        details=details,
    )
    fields = dict(zip(AUDIT_COLUMNS, _chain(session, actor, [spec])[0], strict=True))
    fields["details"] = dict(details or {})
    event = AuditEvent(**fields)
    session.add(event)
    session.info[_HEAD_KEY] = (_transaction_key(session), Head(event.seq, event.hash))
    return event
