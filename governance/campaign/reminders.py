"""Reminding reviewers of pending reviews, in rounds counted from the opening.

Round 1 falls `review.reminder_after_days` after a campaign opened and each
later round `review.reminder_interval_days` after the one before. A reviewer
gets one `review_reminder` per campaign per round, however many reviews they
have pending in it, and none once they have decided them all or the
campaign is closed. Rounds missed while no worker ran are not made up: the
reviewer gets the current round only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor
from governance.campaign.models import Campaign, CampaignStatus, Review, ReviewStatus
from governance.clock import utcnow
from governance.person.models import Person
from governance.remediation.notifications import Template
from governance.remediation.service import Notification, queue_notifications
from governance.settings import ReviewSettings

logger = logging.getLogger(__name__)


def reminder_round(opened_at: datetime, now: datetime, review: ReviewSettings) -> int:
    """Return the reminder round due at `now`: 0 before the first reminder."""
    first = timedelta(days=review.reminder_after_days)
    elapsed = now - opened_at
    if elapsed < first:
        return 0
    return 1 + (elapsed - first) // timedelta(days=review.reminder_interval_days)


def send_reminders(app: Steward, *, actor: Actor) -> int:
    """Queue the reminders due now, one transaction per campaign; return the count."""
    now = utcnow()
    review = app.settings.review
    earliest = now - timedelta(days=review.reminder_after_days)
    with app.session() as session:
        campaigns = session.execute(
            sa.select(Campaign.id, Campaign.opened_at)
            .where(Campaign.status == CampaignStatus.OPEN)
            .where(Campaign.opened_at <= earliest)
            .order_by(Campaign.id)
        ).all()
    queued = 0
    for campaign_id, opened_at in campaigns:
        round_number = reminder_round(opened_at, now, review)
        with app.session() as session:
            queued += _remind(session, campaign_id, round_number, actor=actor, now=now)
    if queued:
        logger.info("queued %s review reminders", queued)
    return queued


def _remind(
    session: Session,
    campaign_id: int,
    round_number: int,
    *,
    actor: Actor,
    now: datetime,
) -> int:
    # A campaign closed since the list was read has no pending reviews left,
    # so it gets no reminder.
    reviewers = session.execute(
        sa.select(Review.reviewer_id, Person.email)
        .join(Person, Person.id == Review.reviewer_id)
        .where(
            Review.campaign_id == campaign_id,
            Review.status == ReviewStatus.PENDING,
            Review.reminder_count < round_number,
            Person.active.is_(True),
        )
        .distinct()
        .order_by(Review.reviewer_id)
    ).all()
    if not reviewers:
        return 0
    queued = queue_notifications(
        session,
        [
            Notification(
                dedupe_key=(
                    f"campaign:{campaign_id}:reminder:{reviewer_id}:{round_number}"
                ),
                recipient=email,
                template=Template.REVIEW_REMINDER.value,
                context={
                    "campaign_id": campaign_id,
                    "reviewer_id": reviewer_id,
                    "round": round_number,
                },
            )
            for reviewer_id, email in reviewers
        ],
        actor=actor,
    )
    reviewer_ids = [reviewer_id for reviewer_id, _ in reviewers]
    for start in range(0, len(reviewer_ids), 1000):
        session.execute(
            sa.update(Review)
            .where(
                Review.campaign_id == campaign_id,
                Review.status == ReviewStatus.PENDING,
                Review.reviewer_id.in_(reviewer_ids[start : start + 1000]),
                Review.reminder_count < round_number,
            )
            .values(reminder_count=round_number, last_reminded_at=now)
            .execution_options(synchronize_session=False)
        )
    return queued
