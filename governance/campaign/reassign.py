"""Handing a pending review to another reviewer.

A reviewer who is not the right person for an identity names who is. The
new reviewer gets a review request listing just that review, queued in the
same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.audit.service import Actor, record
from governance.campaign.decision import lock_review, may_decide
from governance.campaign.models import Review, ReviewStatus
from governance.errors import ConflictError, PermissionDeniedError
from governance.person.models import Person
from governance.person.service import find_active_person
from governance.remediation.service import queue_notification
from governance.settings import Settings

logger = logging.getLogger(__name__)

SECURITY_TEAM = "security team"


@dataclass(frozen=True)
class ReassignOutcome:
    """The review after the call; `changed` is false when nothing was done."""

    review: Review
    previous: Person | None
    changed: bool


def reassign_review(
    session: Session,
    review_id: int,
    to_email: str,
    *,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> ReassignOutcome:
    """Make the active person with `to_email` the reviewer of a pending review.

    Only someone who may decide the review may hand it on. Raises
    PermissionDeniedError for anyone else, ConflictError when the review is
    no longer pending, and NotFoundError or InvalidInputError when the person
    is unknown or inactive. Reassigning to the current reviewer changes
    nothing. The review row is locked, so concurrent calls serialise.
    """
    review = lock_review(session, review_id)
    if review.status is not ReviewStatus.PENDING:
        raise ConflictError(
            f"review {review.id} is {review.status.value}; it can no longer be "
            "reassigned"
        )
    if not may_decide(session, review, actor, settings):
        raise PermissionDeniedError(
            f"{actor.name} may not reassign review {review.id}: only the reviewer, "
            "a backup owner or a security admin may"
        )
    person = find_active_person(session, to_email)
    previous = review.reviewer
    if review.reviewer_id == person.id:
        return ReassignOutcome(review, previous, changed=False)

    review.reviewer_id = person.id
    review.reviewer = person
    event = record(
        session,
        actor=actor,
        action="review.reassigned",
        object_type="review",
        object_id=str(review.id),
        before_state=review.status.value,
        after_state=review.status.value,
        reason=reason or f"{actor.name} handed the review on",
        details={
            "from": previous.email if previous is not None else SECURITY_TEAM,
            "to": person.email,
        },
    )
    # The audit sequence number makes the key unique for each hand-over, so
    # a review handed back to an earlier reviewer still reaches them.
    queue_notification(
        session,
        actor=actor,
        dedupe_key=f"review:{review.id}:reassigned:{event.seq}",
        recipient=person.email,
        template="review_request",
        context={
            "campaign_id": review.campaign_id,
            "reviewer_id": person.id,
            "review_ids": [review.id],
        },
        identity_id=review.identity_id,
    )
    logger.info(
        "review %s reassigned from %s to %s by %s",
        review.id,
        previous.email if previous is not None else SECURITY_TEAM,
        person.email,
        actor.name,
    )
    return ReassignOutcome(review, previous, changed=True)
