"""The messages the core queues for people and channels, and what each carries.

A notification is an outbox row of kind `notify` whose payload holds a
`recipient` (a person's email, or None for the security team), a `template`
(one of `Template`) and a `context` of ids and short values. The core never
renders text: a notifier (the Slack bot, the console) reads the current rows
behind the ids when it sends, so a message shows the state at sending time.

Context keys by template:

- `orphan_claim`: identity_id, campaign_id (optional). Goes to the orphan
  channel, where anyone but a guest may claim.
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
