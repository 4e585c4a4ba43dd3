"""Orphan posts, claim approvals and the outcome sent to the claimant.

A campaign's orphans are posted as pages of `ORPHANS_PER_PAGE`; an orphan
queued on its own gets a post of its own. Each orphan shows its evidence
with Claim and Not mine buttons (button values are the identity id). Once
the identity is claimed, or a claim waits for approval, the page shows that
instead of its buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    divider,
    header,
    section,
)
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
from governance.campaign.models import Campaign, Review
from governance.campaign.service import claim_request_key
from governance.claim.models import Claim, ClaimStatus
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.notifications import Template
from governance.remediation.service import find_by_dedupe_key

# Four blocks per orphan (evidence, status, buttons, divider) keep a page of
# ten, with its heading, opening and page line, within 50 blocks.
ORPHANS_PER_PAGE = 10


def latest_claim(session: Session, identity_id: int) -> Claim | None:
    return session.scalars(
        sa.select(Claim)
        .where(Claim.identity_id == identity_id)
        .order_by(Claim.id.desc())
        .limit(1)
    ).first()


def _orphan_status(
    session: Session, identity: Identity, *, listed: bool
) -> tuple[str, list[Block]]:
    """Return the status line of an orphan and the buttons it still offers.

    A `listed` orphan sits on a page of a campaign's orphans, whose opening
    already says what happens to unclaimed ones, so its line is shorter.
    """
    claim = latest_claim(session, identity.id)
    if identity.state is IdentityState.ORPHANED:
        if claim is not None and claim.status is ClaimStatus.PENDING_APPROVAL:
            return (
                f"*Claimed* by {name_of(claim.claimant)} at "
                f"{CHANNEL.time(claim.requested_at)}; a security admin must "
                "approve because the identity is privileged.",
                [],
            )
        deadline = CHANNEL.date(identity.claim_deadline)
        if listed:
            line = f"Claim deadline: {deadline}."
        else:
            line = (
                f"Claim it by {deadline} if it is yours. "
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


def orphan_blocks(session: Session, identity: Identity, *, listed: bool) -> list[Block]:
    """Return one orphan's evidence, its status and the buttons it still offers."""
    # On a page of orphans the heading already states that they are unowned.
    title = identity_title(identity)
    if not listed:
        title = f"*Unowned identity:* {title}"
    evidence = f"{title}\n{identity_evidence(identity, CHANNEL)}"
    status, buttons = _orphan_status(session, identity, listed=listed)
    blocks = [section(evidence, block_id=f"orphan:{identity.id}"), context(status)]
    if buttons:
        blocks.append(actions(buttons, block_id=f"orphan:{identity.id}:claim"))
    return blocks


def build_orphan_post(session: Session, identity_id: int, key: str) -> Page:
    """Render the post of one orphan in its current state."""
    identity = load_identities(session, [identity_id])[identity_id]
    blocks = orphan_blocks(session, identity, listed=False)
    fallback = f"Unowned identity: {text(identity.name, 150)}. Is it yours?"
    return Page(
        text=fallback, blocks=blocks, key=key, items={"identity_id": identity.id}
    )


@dataclass(frozen=True)
class OrphanPage:
    """One page of a campaign's orphans: which ones, and where the page sits.

    `first` is the position (from 1) of the page's first orphan among the
    `total` orphans of the campaign.
    """

    key: str
    campaign_id: int
    identity_ids: list[int]
    page: int
    pages: int
    first: int
    total: int

    def items(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "identity_ids": list(self.identity_ids),
            "page": self.page,
            "pages": self.pages,
            "first": self.first,
            "total": self.total,
        }

    @classmethod
    def from_items(cls, key: str, items: dict[str, Any]) -> OrphanPage:
        identity_ids = [int(value) for value in items["identity_ids"]]
        return cls(
            key=key,
            campaign_id=int(items["campaign_id"]),
            identity_ids=identity_ids,
            page=int(items.get("page") or 1),
            pages=int(items.get("pages") or 1),
            first=int(items.get("first") or 1),
            total=int(items.get("total") or len(identity_ids)),
        )


def orphan_page_key(campaign_id: int, page: int) -> str:
    return f"orphan_claim:campaign:{campaign_id}:{page}"


def orphan_pages(campaign_id: int, identity_ids: Sequence[int]) -> list[OrphanPage]:
    """Split a campaign's orphans into pages of `ORPHANS_PER_PAGE`, in order."""
    chunks = [
        list(identity_ids[start : start + ORPHANS_PER_PAGE])
        for start in range(0, len(identity_ids), ORPHANS_PER_PAGE)
    ]
    return [
        OrphanPage(
            key=orphan_page_key(campaign_id, number),
            campaign_id=campaign_id,
            identity_ids=chunk,
            page=number,
            pages=len(chunks),
            first=(number - 1) * ORPHANS_PER_PAGE + 1,
            total=len(identity_ids),
        )
        for number, chunk in enumerate(chunks, start=1)
    ]


def build_orphan_page(session: Session, spec: OrphanPage) -> Page:
    """Render one page of a campaign's orphans in their current state."""
    campaign = session.get_one(Campaign, spec.campaign_id)
    identities = load_identities(session, spec.identity_ids)
    noun = "identity has" if spec.total == 1 else "identities have"
    opening = (
        f"{spec.total} {noun} no accountable owner in certification "
        f"{text(campaign.name, 100)}. If one is yours, claim it before its claim "
        "deadline; unclaimed, it becomes a candidate for revocation. A security "
        "admin approves each claim of a privileged identity."
    )
    blocks: list[Block] = [header("Unowned identities: are they yours?")]
    blocks.append(section(opening))

    for identity_id in spec.identity_ids:
        identity = identities.get(identity_id)
        if identity is None:
            continue
        blocks.extend(orphan_blocks(session, identity, listed=True))
        blocks.append(divider())

    last = spec.first + len(spec.identity_ids) - 1
    if spec.pages > 1:
        blocks.append(
            context(
                f"Page {spec.page} of {spec.pages}: orphans {spec.first}-{last} "
                f"of {spec.total}"
            )
        )
    fallback = (
        f"Unowned identities {spec.first}-{last} of {spec.total}: are they yours?"
    )
    return Page(text=fallback, blocks=blocks, key=spec.key, items=spec.items())


def orphan_page_keys(session: Session, identity_id: int) -> list[str]:
    """Return the keys of the campaign pages that list an orphan.

    A campaign's claim request stores its orphans in order, so the page of
    an orphan follows from its position in that list.
    """
    campaign_ids = session.scalars(
        sa.select(Review.campaign_id)
        .where(Review.identity_id == identity_id)
        .distinct()
    ).all()
    keys: list[str] = []
    for campaign_id in sorted(campaign_ids):
        request = find_by_dedupe_key(session, claim_request_key(campaign_id))
        if request is None:
            continue
        request_context = (request.payload or {}).get("context") or {}
        listed = [int(value) for value in request_context.get("identity_ids") or []]
        if identity_id in listed:
            page = listed.index(identity_id) // ORPHANS_PER_PAGE + 1
            keys.append(orphan_page_key(campaign_id, page))
    return keys


@renders(Template.ORPHAN_CLAIM, Destination.ORPHANS)
def render_orphan_claim(session: Session, request: RenderRequest) -> list[Page]:
    """Post orphans to the orphan channel, where anyone but a guest may claim.

    A campaign's orphans (`identity_ids` in the context) go out as pages of
    `ORPHANS_PER_PAGE`; a lone orphan (`identity_id`) gets a post of its own.
    """
    listed = request.context.get("identity_ids")
    if listed is None:
        identity_id = int(request.context["identity_id"])
        key = f"orphan_claim:{request.remediation_id}"
        return [build_orphan_post(session, identity_id, key)]
    campaign_id = int(request.context["campaign_id"])
    specs = orphan_pages(campaign_id, [int(value) for value in listed])
    return [build_orphan_page(session, spec) for spec in specs]


@refreshes(Template.ORPHAN_CLAIM)
def refresh_orphan_claim(session: Session, request: RefreshRequest) -> Page | None:
    if "identity_ids" in request.items:
        spec = OrphanPage.from_items(request.key, request.items)
        return build_orphan_page(session, spec)
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
