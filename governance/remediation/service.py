"""Queueing side effects in the outbox, in the caller's transaction.

Nothing here calls an external system. A row written here is carried out by
the remediation worker after the transaction that wrote it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.service import Actor, record
from governance.campaign.models import Review, ReviewStatus
from governance.clock import utcnow
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState, transition
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)


def find_by_dedupe_key(session: Session, dedupe_key: str) -> Remediation | None:
    """Return the outbox row written earlier for the same side effect, if any."""
    return session.scalars(
        sa.select(Remediation).where(Remediation.dedupe_key == dedupe_key)
    ).one_or_none()


def cancel_open_reviews(
    session: Session, identity: Identity, *, actor: Actor, reason: str
) -> None:
    """Cancel the identity's pending review, if it has one."""
    review = session.scalars(
        sa.select(Review).where(Review.open_identity_id == identity.id)
    ).one_or_none()
    if review is None:
        return
    review.status = ReviewStatus.CANCELLED
    review.open_identity_id = None
    record(
        session,
        actor=actor,
        action="review.cancelled",
        object_type="review",
        object_id=str(review.id),
        before_state=ReviewStatus.PENDING.value,
        after_state=ReviewStatus.CANCELLED.value,
        reason=reason,
    )


def queue_revocation(
    session: Session,
    identity: Identity,
    *,
    actor: Actor,
    action: str,
    reason: str,
    dedupe_key: str,
    approval_required: bool = False,
    payload: dict[str, Any] | None = None,
    review_id: int | None = None,
    ask_approval: bool = True,
) -> Remediation:
    """Queue the revocation of an identity, or return the one queued before.

    A privileged identity always waits for a security admin's approval. The
    identity moves to `revocation_approval` or `revocation_pending`, and a
    pending review of it is cancelled. A revocation that waits is announced
    to the security team with a `revocation_approval` notification, unless
    `ask_approval` is false because the caller asks for the approval of a
    whole batch itself.
    """
    existing = find_by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing

    needs_approval = approval_required or identity.tier is RiskTier.PRIVILEGED
    target = (
        IdentityState.REVOCATION_APPROVAL
        if needs_approval
        else IdentityState.REVOCATION_PENDING
    )
    cancel_open_reviews(session, identity, actor=actor, reason=reason)
    transition(session, identity, target, actor=actor, action=action, reason=reason)
    remediation = Remediation(
        kind=RemediationKind.REVOKE,
        status=RemediationStatus.AWAITING_APPROVAL
        if needs_approval
        else RemediationStatus.PENDING,
        dedupe_key=dedupe_key,
        identity_id=identity.id,
        review_id=review_id,
        payload=dict(payload or {}),
        reason=reason,
        requested_by=actor.name,
        next_attempt_at=None if needs_approval else utcnow(),
    )
    _add_with_ticket(session, remediation, actor=actor)
    if needs_approval and ask_approval:
        queue_notification(
            session,
            actor=actor,
            dedupe_key=f"remediation:{remediation.id}:approval",
            recipient=None,
            template="revocation_approval",
            context={"remediation_id": remediation.id},
            identity_id=identity.id,
        )
    return remediation


def _add_with_ticket(
    session: Session, remediation: Remediation, *, actor: Actor
) -> Remediation:
    """Write a new remediation, its audit event and the ticket that records it."""
    session.add(remediation)
    session.flush()
    record(
        session,
        actor=actor,
        action="remediation.queued",
        object_type="remediation",
        object_id=str(remediation.id),
        after_state=remediation.status.value,
        reason=remediation.reason,
        details={
            "kind": remediation.kind.value,
            "identity_id": remediation.identity_id,
        },
    )
    queue_ticket(session, remediation, actor=actor)
    return remediation


def queue_ticket(
    session: Session, remediation: Remediation, *, actor: Actor
) -> Remediation:
    """Queue the ticket that records a remediation in the ticketing system."""
    dedupe_key = f"ticket:{remediation.id}"
    existing = find_by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing
    ticket = Remediation(
        kind=RemediationKind.TICKET,
        status=RemediationStatus.PENDING,
        dedupe_key=dedupe_key,
        identity_id=remediation.identity_id,
        review_id=remediation.review_id,
        payload={"remediation_id": remediation.id, "kind": remediation.kind.value},
        reason=remediation.reason,
        requested_by=actor.name,
        next_attempt_at=utcnow(),
    )
    session.add(ticket)
    session.flush()
    return ticket


def open_scope_reduction(
    session: Session,
    identity: Identity,
    *,
    actor: Actor,
    reason: str,
    deadline_days: int,
    review_id: int | None = None,
) -> Remediation:
    """Record that an owner must reduce an identity's scope by a deadline."""
    dedupe_key = f"review:{review_id}:reduce" if review_id else f"reduce:{identity.id}"
    existing = find_by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing
    now = utcnow()
    transition(
        session,
        identity,
        IdentityState.SCOPE_REDUCTION_PENDING,
        actor=actor,
        action="review.reduce_scope",
        reason=reason,
    )
    remediation = Remediation(
        kind=RemediationKind.SCOPE_REDUCTION,
        status=RemediationStatus.OPEN,
        dedupe_key=dedupe_key,
        identity_id=identity.id,
        review_id=review_id,
        reason=reason,
        requested_by=actor.name,
        deadline=now + timedelta(days=deadline_days),
    )
    return _add_with_ticket(session, remediation, actor=actor)


def queue_notification(
    session: Session,
    *,
    actor: Actor,
    dedupe_key: str,
    recipient: str | None,
    template: str,
    context: dict[str, Any],
    identity_id: int | None = None,
) -> Remediation:
    """Queue a message to a person (by email) or to the security team (None)."""
    existing = find_by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing
    notification = Remediation(
        kind=RemediationKind.NOTIFY,
        status=RemediationStatus.PENDING,
        dedupe_key=dedupe_key,
        identity_id=identity_id,
        payload={"recipient": recipient, "template": template, "context": context},
        reason=template,
        requested_by=actor.name,
        next_attempt_at=utcnow(),
    )
    session.add(notification)
    session.flush()
    return notification


@dataclass(frozen=True)
class Notification:
    """A message to queue: `recipient` is an email, or None for the security team."""

    dedupe_key: str
    recipient: str | None
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    identity_id: int | None = None


def queue_notifications(
    session: Session, notifications: Sequence[Notification], *, actor: Actor
) -> int:
    """Queue many messages with one look-up and one insert; return how many are new.

    A message whose dedupe key was queued before is skipped, so a re-run of
    the job that queues them adds nothing. Two transactions inserting the
    same key concurrently fail on the unique key, and the later one rolls back.
    """
    by_key = {item.dedupe_key: item for item in notifications}
    keys = list(by_key)
    existing: set[str] = set()
    for start in range(0, len(keys), 1000):
        existing.update(
            session.scalars(
                sa.select(Remediation.dedupe_key).where(
                    Remediation.dedupe_key.in_(keys[start : start + 1000])
                )
            )
        )
    now = utcnow()
    rows = [
        {
            "kind": RemediationKind.NOTIFY,
            "status": RemediationStatus.PENDING,
            "dedupe_key": key,
            "identity_id": item.identity_id,
            "payload": {
                "recipient": item.recipient,
                "template": item.template,
                "context": item.context,
            },
            "reason": item.template,
            "requested_by": actor.name,
            "next_attempt_at": now,
        }
        for key, item in by_key.items()
        if key not in existing
    ]
    if rows:
        session.execute(sa.insert(cast(sa.Table, Remediation.__table__)), rows)
    return len(rows)
