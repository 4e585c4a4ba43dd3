"""Read-only summaries of pending work: one person's, one identity's, everyone's.

The Slack command and Home tab show these; nothing here changes a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from governance.campaign.models import Campaign, CampaignStatus, Review, ReviewStatus
from governance.claim.models import Claim, ClaimStatus
from governance.claim.service import pending_claim
from governance.identity.models import Identity
from governance.identity.queries import Listing
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)

# Outbox rows that act on an identity. Tickets and messages only record or
# announce those actions, so they are left out of the remediation counts.
ACTION_KINDS = (
    RemediationKind.REVOKE,
    RemediationKind.SCOPE_REDUCTION,
    RemediationKind.MANUAL_REVOKE,
)

OPEN_STATUSES = (
    RemediationStatus.AWAITING_APPROVAL,
    RemediationStatus.PENDING,
    RemediationStatus.IN_PROGRESS,
    RemediationStatus.STAGED,
    RemediationStatus.OPEN,
    RemediationStatus.NEEDS_HUMAN,
)


@dataclass(frozen=True)
class OpenItems:
    """The open work on one identity: its review, its claim and its remediations."""

    review: Review | None
    claim: Claim | None
    remediations: Sequence[Remediation]


@dataclass(frozen=True)
class RemediationCounts:
    """Open remediations (revocations and scope reductions) by stage.

    `pending` counts rows queued or being carried out; `open` counts staged
    revocations in their grace period and manual work waiting for a person.
    """

    awaiting_approval: int
    pending: int
    open: int
    needs_human: int


def pending_reviews(
    session: Session, reviewer_id: int, *, limit: int, offset: int = 0
) -> Listing[Review]:
    """Return the person's pending reviews, earliest due first."""
    condition = sa.and_(
        Review.reviewer_id == reviewer_id, Review.status == ReviewStatus.PENDING
    )
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Review).where(condition)
    )
    rows = session.scalars(
        sa.select(Review)
        .where(condition)
        .options(selectinload(Review.identity), selectinload(Review.campaign))
        .order_by(Review.due_at, Review.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return Listing(items=rows, total=total or 0, offset=offset)


def pending_claims(
    session: Session, claimant_id: int, *, limit: int, offset: int = 0
) -> Listing[Claim]:
    """Return the person's claims waiting for a security admin, oldest first."""
    condition = sa.and_(
        Claim.claimant_id == claimant_id,
        Claim.status == ClaimStatus.PENDING_APPROVAL,
    )
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Claim).where(condition)
    )
    rows = session.scalars(
        sa.select(Claim)
        .where(condition)
        .options(selectinload(Claim.identity))
        .order_by(Claim.requested_at, Claim.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return Listing(items=rows, total=total or 0, offset=offset)


def open_items(session: Session, identity: Identity) -> OpenItems:
    """Return the identity's open review, waiting claim and open remediations."""
    review = session.scalars(
        sa.select(Review)
        .where(Review.open_identity_id == identity.id)
        .options(selectinload(Review.reviewer), selectinload(Review.campaign))
    ).one_or_none()
    remediations = session.scalars(
        sa.select(Remediation)
        .where(
            Remediation.identity_id == identity.id,
            Remediation.kind.in_(ACTION_KINDS),
            Remediation.status.in_(OPEN_STATUSES),
        )
        .order_by(Remediation.id)
    ).all()
    return OpenItems(
        review=review, claim=pending_claim(session, identity), remediations=remediations
    )


def open_campaigns(session: Session, *, limit: int) -> Listing[Campaign]:
    """Return open campaigns, earliest due date first."""
    condition = Campaign.status == CampaignStatus.OPEN
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Campaign).where(condition)
    )
    rows = session.scalars(
        sa.select(Campaign)
        .where(condition)
        .order_by(Campaign.due_at, Campaign.id)
        .limit(limit)
    ).all()
    return Listing(items=rows, total=total or 0)


def orphan_count(session: Session) -> int:
    """Return the number of identities in the orphaned state."""
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(Identity)
        .where(Identity.state == IdentityState.ORPHANED)
    )
    return count or 0


def remediation_counts(session: Session) -> RemediationCounts:
    """Count open revocations and scope reductions by status group."""
    rows = session.execute(
        sa.select(Remediation.status, sa.func.count())
        .where(
            Remediation.kind.in_(ACTION_KINDS),
            Remediation.status.in_(OPEN_STATUSES),
        )
        .group_by(Remediation.status)
    ).all()
    counts: dict[RemediationStatus, int] = {row[0]: row[1] for row in rows}
    status = RemediationStatus
    return RemediationCounts(
        awaiting_approval=counts.get(status.AWAITING_APPROVAL, 0),
        pending=counts.get(status.PENDING, 0) + counts.get(status.IN_PROGRESS, 0),
        open=counts.get(status.STAGED, 0) + counts.get(status.OPEN, 0),
        needs_human=counts.get(status.NEEDS_HUMAN, 0),
    )
