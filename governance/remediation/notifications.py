"""The messages the core queues for people and channels, and what each carries.

A notification is an outbox row of kind `notify` whose payload holds a
`recipient` (a person's email, or None for the security team), a `template`
(one of `Template`) and a `context` of ids and short values. The core never
renders text: a notifier (the Slack bot, the console) reads the current rows
behind the ids when it sends, so a message shows the state at sending time.

Context keys by template:

- `orphan_claim`: either identity_id (one orphan) or campaign_id and
  identity_ids (every orphan of a campaign, in order, posted as pages of a
  few orphans each). Goes to the orphan channel, where anyone but a guest
  may claim.
- `review_request`: campaign_id, reviewer_id. One per reviewer per campaign,
  listing every pending review of that reviewer in the campaign.
- `review_reminder`: campaign_id, reviewer_id, round.
- `review_escalated`: review_id, campaign_id, from_person_id (or None),
  to_person_id (None when it went to the security team).
- `review_expired`: review_id, campaign_id.
- `claim_approval`: claim_id. To the security channel.
- `claim_decided`: claim_id. To the claimant.
- `revocation_approval`: remediation_id. To the security channel.
- `remediation_decided`: remediation_id. To the requester.
- `event_approval`: event_id. To the security channel.
- `lifecycle_shared_identity`: identity_id, closed, still_linked.
- `scope_reduction_due`: remediation_id. To the owner before the deadline.
- `scope_reduction_overdue`: remediation_id. To the owner and security.
- `ticket_failed`: remediation_id (the remediation the ticket records),
  ticket_id (its ticket row), error. To the security channel, once per
  distinct error of a ticket.
- `delivery_failed`: remediation_id (the undelivered notification), error.
- `audit_head`: seq, hash, at. To the security channel.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.campaign.models import Campaign, CampaignStatus, Review, ReviewStatus
from governance.remediation.models import Remediation


class Template(StrEnum):
    """Names of the notification templates; see the module docstring."""

    ORPHAN_CLAIM = "orphan_claim"
    REVIEW_REQUEST = "review_request"
    REVIEW_REMINDER = "review_reminder"
    REVIEW_ESCALATED = "review_escalated"
    REVIEW_EXPIRED = "review_expired"
    CLAIM_APPROVAL = "claim_approval"
    CLAIM_DECIDED = "claim_decided"
    REVOCATION_APPROVAL = "revocation_approval"
    REMEDIATION_DECIDED = "remediation_decided"
    EVENT_APPROVAL = "event_approval"
    LIFECYCLE_SHARED_IDENTITY = "lifecycle_shared_identity"
    SCOPE_REDUCTION_DUE = "scope_reduction_due"
    SCOPE_REDUCTION_OVERDUE = "scope_reduction_overdue"
    TICKET_FAILED = "ticket_failed"
    DELIVERY_FAILED = "delivery_failed"
    AUDIT_HEAD = "audit_head"


def obsolete_reason(session: Session, remediation: Remediation) -> str | None:
    """Return why a queued notification no longer needs sending, or None.

    A notifier calls this in the transaction that marks the row sent, so a
    decision committed a moment earlier suppresses the message. Review
    requests and reminders are obsolete once their campaign is closed or the
    reviewer has no pending review left in it. An escalation notice is
    obsolete once its review is no longer pending, was reassigned again, or
    its campaign is closed. Every other template returns None.
    """
    template = remediation.payload.get("template")
    context = remediation.payload.get("context") or {}
    if template in (Template.REVIEW_REQUEST, Template.REVIEW_REMINDER):
        return _reviewer_obsolete(session, context)
    if template == Template.REVIEW_ESCALATED:
        return _escalation_obsolete(session, context)
    return None


def _closed_campaign(session: Session, campaign_id: Any) -> str | None:
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    if campaign is None:
        return f"campaign {campaign_id} not found"
    if campaign.status is CampaignStatus.CLOSED:
        return f"campaign {campaign.id} is closed"
    return None


def _reviewer_obsolete(session: Session, context: dict[str, Any]) -> str | None:
    campaign_id = context.get("campaign_id")
    reviewer_id = context.get("reviewer_id")
    closed = _closed_campaign(session, campaign_id)
    if closed is not None:
        return closed
    pending = session.scalar(
        sa.select(Review.id)
        .where(
            Review.campaign_id == campaign_id,
            Review.reviewer_id == reviewer_id,
            Review.status == ReviewStatus.PENDING,
        )
        .limit(1)
    )
    if pending is None:
        return (
            f"person {reviewer_id} has no pending review left in campaign {campaign_id}"
        )
    return None


def _escalation_obsolete(session: Session, context: dict[str, Any]) -> str | None:
    closed = _closed_campaign(session, context.get("campaign_id"))
    if closed is not None:
        return closed
    review_id = context.get("review_id")
    review = session.get(Review, review_id) if review_id else None
    if review is None:
        return f"review {review_id} not found"
    if review.status is not ReviewStatus.PENDING:
        return f"review {review.id} is {review.status.value}"
    if review.reviewer_id != context.get("to_person_id"):
        return f"review {review.id} was reassigned again"
    return None
