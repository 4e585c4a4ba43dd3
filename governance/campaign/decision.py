"""Review decisions: committed exactly once, before any side effect runs.

The two answers map to one decision: active and minimal certifies for one
more cycle, not active queues a revocation, active but not minimal opens a
scope reduction with a deadline. Deciding a review that is already decided
returns the first decision and creates nothing. The review row is locked
(SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions hold the write
lock from BEGIN IMMEDIATE) so that two concurrent decisions serialise and the
second one sees the first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.service import Actor, record
from governance.authz import is_security_admin
from governance.campaign.models import (
    Campaign,
    CampaignStatus,
    Decision,
    Review,
    ReviewStatus,
)
from governance.campaign.schedule import certified_until
from governance.clock import utcnow
from governance.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState, transition
from governance.remediation.service import open_scope_reduction, queue_revocation
from governance.settings import Settings

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 2000


@dataclass(frozen=True)
class DecisionOutcome:
    """The review after the call; `created` is false when it was decided before."""

    review: Review
    created: bool


def decision_for(active: bool, minimal: bool) -> Decision:
    """Map the answers to the two review questions to a decision."""
    if not active:
        return Decision.REVOKE
    return Decision.CERTIFY if minimal else Decision.REDUCE_SCOPE


def lock_review(session: Session, review_id: int) -> Review:
    """Load a review for update; raise NotFoundError when unknown."""
    review = session.scalars(
        sa.select(Review).where(Review.id == review_id).with_for_update()
    ).one_or_none()
    if review is None:
        raise NotFoundError("review", str(review_id))
    return review


def may_decide(
    session: Session, review: Review, actor: Actor, settings: Settings
) -> bool:
    """Return whether the actor is the reviewer, a backup owner or a security admin."""
    if is_security_admin(settings, actor):
        return True
    if review.reviewer is not None and review.reviewer.email == actor.name:
        return True
    identity = session.get_one(Identity, review.identity_id)
    return any(
        backup.email == actor.name and backup.active
        for backup in identity.backup_owners
    )


def decide_review(
    session: Session,
    review_id: int,
    *,
    active: bool,
    minimal: bool,
    actor: Actor,
    settings: Settings,
    comment: str | None = None,
) -> DecisionOutcome:
    """Record a decision, or return the one recorded before.

    Raises PermissionDeniedError when the actor may not decide, and
    ConflictError when the review expired or was cancelled.
    """
    if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInputError(
            f"comment too long: {len(comment)} characters, at most {MAX_COMMENT_LENGTH}"
        )
    review = lock_review(session, review_id)
    if review.status is ReviewStatus.DECIDED:
        return DecisionOutcome(review, created=False)
    if review.status is not ReviewStatus.PENDING:
        raise ConflictError(
            f"review {review.id} is {review.status.value}; it can no longer be decided"
        )
    if not may_decide(session, review, actor, settings):
        raise PermissionDeniedError(
            f"{actor.name} may not decide review {review.id}: only the reviewer, a "
            "backup owner or a security admin may"
        )
    campaign = session.get_one(Campaign, review.campaign_id)
    if campaign.status is not CampaignStatus.OPEN:
        raise ConflictError(f"campaign {campaign.id} is closed")

    now = utcnow()
    decision = decision_for(active, minimal)
    identity = session.get_one(Identity, review.identity_id)
    if identity.state is IdentityState.ORPHANED and decision is not Decision.REVOKE:
        raise ConflictError(
            f"identity {identity.id} has no owner: it must be claimed before it can "
            "be certified or kept"
        )
    review.status = ReviewStatus.DECIDED
    review.open_identity_id = None
    review.decision = decision
    review.application_active = active
    review.scope_minimal = minimal
    review.comment = comment
    review.decided_by = actor.name
    review.decided_at = now
    session.flush()
    record(
        session,
        actor=actor,
        action="review.decided",
        object_type="review",
        object_id=str(review.id),
        before_state=ReviewStatus.PENDING.value,
        after_state=ReviewStatus.DECIDED.value,
        reason=comment or "",
        details={"decision": decision.value, "active": active, "minimal": minimal},
    )
    _apply(session, identity, review, decision, actor=actor, settings=settings)
    logger.info("review %s decided %s by %s", review.id, decision.value, actor.name)
    return DecisionOutcome(review, created=True)


def certify_standard_reviews(
    session: Session,
    review_ids: Sequence[int],
    *,
    actor: Actor,
    settings: Settings,
) -> list[int]:
    """Certify, in one transaction, the listed reviews that are pending and standard.

    Bulk certification is for the standard tier only: reviews of privileged
    identities, and reviews no longer pending, are skipped. Every review is
    decided with `decide_review`, so the permission check and the audit
    event are the same as for one review. Reviews are locked in id order, so
    two concurrent calls cannot deadlock. Returns the ids certified by this call.
    """
    certified: list[int] = []
    for review_id in sorted(set(review_ids)):
        review = lock_review(session, review_id)
        if review.status is not ReviewStatus.PENDING:
            continue
        identity = session.get_one(Identity, review.identity_id)
        if identity.tier is not RiskTier.STANDARD:
            continue
        outcome = decide_review(
            session,
            review_id,
            active=True,
            minimal=True,
            actor=actor,
            settings=settings,
        )
        if outcome.created:
            certified.append(review_id)
    return certified


def _apply(
    session: Session,
    identity: Identity,
    review: Review,
    decision: Decision,
    *,
    actor: Actor,
    settings: Settings,
) -> None:
    reason = f"review {review.id}: {decision.value}"
    if decision is Decision.CERTIFY:
        certify(session, identity, actor=actor, settings=settings, reason=reason)
    elif decision is Decision.REVOKE:
        queue_revocation(
            session,
            identity,
            actor=actor,
            action="review.revoke",
            reason=reason,
            dedupe_key=f"review:{review.id}:revoke",
            review_id=review.id,
        )
    else:
        open_scope_reduction(
            session,
            identity,
            actor=actor,
            reason=reason,
            deadline_days=settings.review.scope_reduction_deadline_days,
            review_id=review.id,
        )


def certify(
    session: Session,
    identity: Identity,
    *,
    actor: Actor,
    settings: Settings,
    reason: str,
) -> None:
    """Extend the identity's certification by one cycle of its tier."""
    now = utcnow()
    identity.certified_at = now
    identity.certified_until = certified_until(now, identity.tier, settings.review)
    identity.review_due_at = identity.certified_until
    if identity.state is not IdentityState.OWNED:
        transition(
            session,
            identity,
            IdentityState.OWNED,
            actor=actor,
            action="identity.certified",
            reason=reason,
            details={"certified_until": identity.certified_until.isoformat()},
        )
