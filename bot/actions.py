"""Action and callback ids of Steward's buttons and modals.

A renderer puts these on the elements it builds and a listener in
`bot/flows/` registers for them, so both sides name each action once.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """`action_id` of each button; every button's value is one or more ids."""

    REVIEW_CERTIFY = "review_certify"
    REVIEW_REDUCE_SCOPE = "review_reduce_scope"
    REVIEW_REVOKE = "review_revoke"
    REVIEW_NOT_MINE = "review_not_mine"
    REVIEW_CERTIFY_ALL = "review_certify_all"
    ORPHAN_CLAIM = "orphan_claim"
    ORPHAN_NOT_MINE = "orphan_not_mine"
    CLAIM_APPROVE = "claim_approve"
    CLAIM_REJECT = "claim_reject"
    REVOCATION_APPROVE = "revocation_approve"
    REVOCATION_REJECT = "revocation_reject"
    EVENT_APPROVE = "event_approve"
    EVENT_REJECT = "event_reject"
    SCOPE_REDUCTION_CONFIRM = "scope_reduction_confirm"


class Callback(StrEnum):
    """`callback_id` of each modal."""

    REVIEW_REASSIGN = "review_reassign"
