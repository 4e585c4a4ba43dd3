"""Escalating reviews that stay unanswered.

A pending review with a reviewer escalates `review.escalate_after_days`
after its campaign opened, and again that long after each escalation: it is
reassigned to the reviewer's active manager, or to the security team's queue
(no reviewer) when the reviewer has none. Each escalation writes one audit
event and notifies both the new reviewer (or the security team) and the
previous one. A review in the security team's queue escalates no further,
and a decided, expired or cancelled review never escalates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor, EventSpec, record_many
from governance.campaign.models import Review, ReviewStatus
from governance.clock import utcnow
from governance.person.models import Person
from governance.remediation.notifications import Template
from governance.remediation.service import Notification, queue_notifications

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass(frozen=True)
class _Assignee:
    person_id: int
    email: str


def escalate_reviews(app: Steward, *, actor: Actor) -> int:
    """Escalate every review unanswered for too long; return how many escalated.

    Works in batches of BATCH_SIZE reviews, each committed on its own.
    """
    days = app.settings.review.escalate_after_days
    escalated = 0
    after_id = 0
    while True:
        with app.session() as session:
            last_id, count = _escalate_batch(
                session, after_id, days=days, actor=actor, now=utcnow()
            )
        if last_id is None:
            break
        escalated += count
        after_id = last_id
    if escalated:
        logger.info("escalated %s unanswered reviews", escalated)
    return escalated


def _escalate_batch(
    session: Session, after_id: int, *, days: int, actor: Actor, now: datetime
) -> tuple[int | None, int]:
    """Escalate the next batch of reviews with ids above `after_id`.

    Returns the last id looked at (None when there was none) and the count.
    """
    cutoff = now - timedelta(days=days)
    reviews = session.scalars(
        sa.select(Review)
        .where(
            Review.id > after_id,
            Review.status == ReviewStatus.PENDING,
            Review.reviewer_id.is_not(None),
            sa.func.coalesce(Review.escalated_at, Review.created_at) <= cutoff,
        )
        .order_by(Review.id)
        .limit(BATCH_SIZE)
        .with_for_update()
    ).all()
    if not reviews:
        return None, 0
    targets = _escalation_targets(session, [r.reviewer_id for r in reviews])
    events: list[EventSpec] = []
    notifications: list[Notification] = []
    for review in reviews:
        previous = review.reviewer_id
        if previous is None:
            continue
        source, target = targets[previous]
        review.reviewer_id = target.person_id if target else None
        review.escalation_level += 1
        review.escalated_at = now
        to_person_id = target.person_id if target else None
        context = {
            "review_id": review.id,
            "campaign_id": review.campaign_id,
            "from_person_id": previous,
            "to_person_id": to_person_id,
        }
        key = f"review:{review.id}:escalated:{review.escalation_level}"
        notifications.append(
            Notification(
                dedupe_key=f"{key}:to",
                recipient=target.email if target else None,
                template=Template.REVIEW_ESCALATED.value,
                context=context,
                identity_id=review.identity_id,
            )
        )
        notifications.append(
            Notification(
                dedupe_key=f"{key}:from",
                recipient=source.email,
                template=Template.REVIEW_ESCALATED.value,
                context=context,
                identity_id=review.identity_id,
            )
        )
        events.append(
            EventSpec(
                action="review.escalated",
                object_type="review",
                object_id=str(review.id),
                before_state=ReviewStatus.PENDING.value,
                after_state=ReviewStatus.PENDING.value,
                reason=(
                    f"unanswered for {days} days; to "
                    + (target.email if target else "the security team")
                ),
                details={
                    "campaign_id": review.campaign_id,
                    "from_person_id": previous,
                    "to_person_id": to_person_id,
                    "level": review.escalation_level,
                },
            )
        )
    session.flush()
    record_many(session, actor, events)
    queue_notifications(session, notifications, actor=actor)
    return reviews[-1].id, len(events)


def _escalation_targets(
    session: Session, reviewer_ids: Sequence[int | None]
) -> dict[int, tuple[_Assignee, _Assignee | None]]:
    """Map each reviewer to (the reviewer, their active manager or None)."""
    ids = sorted({person_id for person_id in reviewer_ids if person_id is not None})
    manager = sa.orm.aliased(Person)
    rows = session.execute(
        sa.select(Person.id, Person.email, manager.id, manager.email, manager.active)
        .outerjoin(manager, manager.id == Person.manager_id)
        .where(Person.id.in_(ids))
    ).all()
    targets: dict[int, tuple[_Assignee, _Assignee | None]] = {}
    for person_id, email, manager_id, manager_email, manager_active in rows:
        target = None
        if manager_id is not None and manager_active and manager_id != person_id:
            target = _Assignee(manager_id, manager_email)
        targets[person_id] = (_Assignee(person_id, email), target)
    return targets
