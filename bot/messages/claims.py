"""Orphan posts, claim approvals and the outcome sent to the claimant.

An orphan post shows one unowned identity with Claim and Not mine buttons
(button values are the identity id). Once the identity is claimed, or a
claim waits for approval, the post shows that instead of the buttons.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.blocks import Block, actions, button, confirm_dialog, context, section
from bot.messages import (
    Destination,
    Page,
    RefreshRequest,
    RenderRequest,
    refreshes,
    renders,
)
from bot.messages.parts import (
    CHANNEL,
    Reader,
    identity_evidence,
    identity_title,
    load_identities,
    name_for_email,
    name_of,
    owner_line,
    people_by_email,
    reader_for,
    text,
)
from governance.claim.models import Claim, ClaimStatus
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.notifications import Template


def latest_claim(session: Session, identity_id: int) -> Claim | None:
    return session.scalars(
        sa.select(Claim)
        .where(Claim.identity_id == identity_id)
        .order_by(Claim.id.desc())
        .limit(1)
    ).first()


def _orphan_status(session: Session, identity: Identity) -> tuple[str, list[Block]]:
    """Return the status line of an orphan post and the buttons it still offers."""
    claim = latest_claim(session, identity.id)
    if identity.state is IdentityState.ORPHANED:
        if claim is not None and claim.status is ClaimStatus.PENDING_APPROVAL:
            return (
                f"*Claimed* by {name_of(claim.claimant)} at "
                f"{CHANNEL.time(claim.requested_at)}; a security admin must "
                "approve because the identity is privileged.",
                [],
            )
        line = (
            f"Claim it by {CHANNEL.date(identity.claim_deadline)} if it is yours. "
            "Unclaimed, it becomes a candidate for revocation."
        )
        if identity.tier is RiskTier.PRIVILEGED:
            line += " It is privileged, so a security admin approves the claim."
        value = str(identity.id)
        return line, [
            button(
                "Claim", action_id=Action.ORPHAN_CLAIM, value=value, style="primary"
            ),
            button("Not mine", action_id=Action.ORPHAN_NOT_MINE, value=value),
        ]
    if (
        claim is not None
        and claim.status is ClaimStatus.APPROVED
        and identity.owner_id == claim.claimant_id
    ):
        return (
            f"*Claimed* by {name_of(claim.claimant)} at "
            f"{CHANNEL.time(claim.decided_at or claim.requested_at)}.",
            [],
        )
    if identity.owner is not None:
        return f"Now owned by {name_of(identity.owner)}.", []
    return f"No longer open to claims: it is {identity.state.value}.", []


def build_orphan_post(session: Session, identity_id: int, key: str) -> Page:
    """Render the orphan post of one identity in its current state."""
    identity = load_identities(session, [identity_id])[identity_id]
    evidence = f"*Unowned identity:* {identity_title(identity)}\n" + identity_evidence(
        identity, CHANNEL
    )
    status, buttons = _orphan_status(session, identity)
    blocks = [section(evidence, block_id=f"orphan:{identity.id}"), context(status)]
    if buttons:
        blocks.append(actions(buttons, block_id=f"orphan:{identity.id}:claim"))
    fallback = f"Unowned identity: {text(identity.name, 150)}. Is it yours?"
    return Page(
        text=fallback, blocks=blocks, key=key, items={"identity_id": identity.id}
    )


@renders(Template.ORPHAN_CLAIM, Destination.ORPHANS)
def render_orphan_claim(session: Session, request: RenderRequest) -> list[Page]:
    """Post one orphan to the orphan channel, where anyone but a guest may claim."""
    identity_id = int(request.context["identity_id"])
    key = f"orphan_claim:{request.remediation_id}"
    return [build_orphan_post(session, identity_id, key)]


@refreshes(Template.ORPHAN_CLAIM)
def refresh_orphan_claim(session: Session, request: RefreshRequest) -> Page | None:
    return build_orphan_post(session, int(request.items["identity_id"]), request.key)


def _claim_status(session: Session, claim: Claim, reader: Reader) -> str:
    people = people_by_email(session, [claim.decided_by])
    outcome = "Approved" if claim.status is ClaimStatus.APPROVED else "Rejected"
    line = (
        f"*{outcome}* by {name_for_email(people, claim.decided_by)} at "
        f"{reader.time(claim.decided_at)}"
    )
    if claim.reason:
        line += f": {text(claim.reason, 300)}"
    return line


def build_claim_approval(session: Session, claim_id: int, key: str) -> Page:
    """Render a privileged claim for the security team, with its decision buttons."""
    claim = session.get_one(Claim, claim_id)
    identity = load_identities(session, [claim.identity_id])[claim.identity_id]
    opening = (
        f"*{name_of(claim.claimant)} claims a privileged identity*\n"
        f"{identity_title(identity)}\n{identity_evidence(identity, CHANNEL)}\n"
        f"Claimed at {CHANNEL.time(claim.requested_at)}"
    )
    blocks = [section(opening, block_id=f"claim:{claim.id}")]
    if claim.status is ClaimStatus.PENDING_APPROVAL:
        value = str(claim.id)
        blocks.append(
            actions(
                [
                    button(
                        "Approve",
                        action_id=Action.CLAIM_APPROVE,
                        value=value,
                        style="primary",
                        confirm=confirm_dialog(
                            "Approve the claim?",
                            f"{name_of(claim.claimant)} becomes the accountable "
                            "owner of this privileged identity.",
                            "Approve",
                        ),
                    ),
                    button(
                        "Reject",
                        action_id=Action.CLAIM_REJECT,
                        value=value,
                        style="danger",
                    ),
                ],
                block_id=f"claim:{claim.id}:decide",
            )
        )
    else:
        blocks.append(context(_claim_status(session, claim, CHANNEL)))
    fallback = f"Claim of {text(identity.name, 150)} waits for a security admin"
    return Page(text=fallback, blocks=blocks, key=key, items={"claim_id": claim.id})


@renders(Template.CLAIM_APPROVAL, Destination.SECURITY)
def render_claim_approval(session: Session, request: RenderRequest) -> list[Page]:
    claim_id = int(request.context["claim_id"])
    return [build_claim_approval(session, claim_id, f"claim_approval:{claim_id}")]


@refreshes(Template.CLAIM_APPROVAL)
def refresh_claim_approval(session: Session, request: RefreshRequest) -> Page | None:
    return build_claim_approval(session, int(request.items["claim_id"]), request.key)


@renders(Template.CLAIM_DECIDED, Destination.RECIPIENT)
def render_claim_decided(session: Session, request: RenderRequest) -> list[Page]:
    """Tell the claimant whether their claim was approved."""
    claim = session.get_one(Claim, int(request.context["claim_id"]))
    identity = session.get_one(Identity, claim.identity_id)
    reader = reader_for(request.recipient, request.time_zone)
    if claim.status is ClaimStatus.PENDING_APPROVAL:
        return []
    approved = claim.status is ClaimStatus.APPROVED
    outcome = "You now own it." if approved else "You do not own it."
    opening = (
        f"Your claim of {identity_title(identity)} was decided. {outcome}\n"
        f"{_claim_status(session, claim, reader)}"
    )
    verb = "approved" if approved else "rejected"
    return [
        Page(
            text=f"Your claim of {text(identity.name, 150)} was {verb}",
            blocks=[section(opening), context(owner_line(identity))],
        )
    ]
