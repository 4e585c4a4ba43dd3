"""Certification prompts: review requests, reminders and escalations.

Each page lists up to `PER_PAGE` reviews with the evidence a reviewer needs
and one row of buttons per pending review. The page stores its review ids
(`items["reviews"]`), so that after a click the same reviews are shown again
in their new state. A review shows buttons only on the page of its current
reviewer; elsewhere it shows who has it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

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
    Refresher,
    RefreshRequest,
    RenderRequest,
    refreshes,
    renders,
)
from bot.messages.parts import (
    Reader,
    identity_evidence,
    identity_title,
    load_identities,
    name_for_email,
    name_of,
    people_by_email,
    reader_for,
    text,
)
from governance.campaign.models import (
    Campaign,
    CampaignStatus,
    Decision,
    Review,
    ReviewStatus,
)
from governance.identity.models import Identity, RiskTier
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.notifications import Template

# Three or four blocks per review keep a page of ten within 50 blocks.
PER_PAGE = 10

DECIDED_AS = {
    Decision.CERTIFY: "Certified",
    Decision.REDUCE_SCOPE: "Kept with a scope reduction",
    Decision.REVOKE: "Revocation requested",
}


@dataclass(frozen=True)
class ReviewPage:
    """One page of reviews: their ids, the reviewer reading them, the template."""

    template: Template
    key: str
    campaign_id: int
    reviewer_id: int | None
    reviews: list[int]
    page: int = 1
    pages: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def items(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "reviewer_id": self.reviewer_id,
            "reviews": list(self.reviews),
            "page": self.page,
            "pages": self.pages,
            **self.extra,
        }

    @classmethod
    def from_items(
        cls, template: Template, key: str, items: dict[str, Any]
    ) -> ReviewPage:
        known = {"campaign_id", "reviewer_id", "reviews", "page", "pages"}
        return cls(
            template=template,
            key=key,
            campaign_id=int(items["campaign_id"]),
            reviewer_id=items.get("reviewer_id"),
            reviews=[int(review_id) for review_id in items.get("reviews") or []],
            page=int(items.get("page") or 1),
            pages=int(items.get("pages") or 1),
            extra={name: value for name, value in items.items() if name not in known},
        )


# Reading


def pending_review_ids(
    session: Session, campaign_id: int, reviewer_id: int | None
) -> list[int]:
    """Return the ids of a reviewer's pending reviews in a campaign, in order."""
    reviewer = (
        Review.reviewer_id.is_(None)
        if reviewer_id is None
        else Review.reviewer_id == reviewer_id
    )
    return list(
        session.scalars(
            sa.select(Review.id)
            .where(
                Review.campaign_id == campaign_id,
                Review.status == ReviewStatus.PENDING,
                reviewer,
            )
            .order_by(Review.id)
        )
    )


def _load_reviews(session: Session, review_ids: Sequence[int]) -> list[Review]:
    found = {
        review.id: review
        for review in session.scalars(
            sa.select(Review)
            .where(Review.id.in_(review_ids))
            .options(selectinload(Review.reviewer))
        )
    }
    return [found[review_id] for review_id in review_ids if review_id in found]


def _scope_reductions(
    session: Session, review_ids: Sequence[int]
) -> dict[int, Remediation]:
    rows = session.scalars(
        sa.select(Remediation).where(
            Remediation.review_id.in_(review_ids),
            Remediation.kind == RemediationKind.SCOPE_REDUCTION,
        )
    )
    return {row.review_id: row for row in rows if row.review_id is not None}


def _revocations(session: Session, review_ids: Sequence[int]) -> dict[int, Remediation]:
    rows = session.scalars(
        sa.select(Remediation).where(
            Remediation.review_id.in_(review_ids),
            Remediation.kind == RemediationKind.REVOKE,
        )
    )
    return {row.review_id: row for row in rows if row.review_id is not None}


# Building


def decision_buttons(review: Review, identity: Identity) -> list[Block]:
    """Return the four buttons of a pending review; each value is the review id."""
    value = str(review.id)
    revoke_confirm = None
    if identity.tier is RiskTier.PRIVILEGED:
        revoke_confirm = confirm_dialog(
            "Revoke a privileged identity?",
            f"A security admin must approve revoking {text(identity.name, 120)}. "
            "Once approved, Steward revokes it at its source.",
            "Request revocation",
        )
    return [
        button(
            "Certify",
            action_id=Action.REVIEW_CERTIFY,
            value=value,
            style="primary",
        ),
        button("Keep, reduce scope", action_id=Action.REVIEW_REDUCE_SCOPE, value=value),
        button(
            "Revoke",
            action_id=Action.REVIEW_REVOKE,
            value=value,
            style="danger",
            confirm=revoke_confirm,
        ),
        button("Not mine", action_id=Action.REVIEW_NOT_MINE, value=value),
    ]


@dataclass(frozen=True)
class _Context:
    reader: Reader
    reviewer_id: int | None
    identities: dict[int, Identity]
    people: dict[str, Person]
    reductions: dict[int, Remediation]
    revocations: dict[int, Remediation]


def _decided_line(review: Review, facts: _Context) -> str:
    who = name_for_email(facts.people, review.decided_by)
    decided_as = DECIDED_AS[review.decision] if review.decision else "Decided"
    line = f"*{decided_as}* by {who} at {facts.reader.time(review.decided_at)}"
    reduction = facts.reductions.get(review.id)
    if review.decision is Decision.REDUCE_SCOPE and reduction is not None:
        if reduction.status is RemediationStatus.OPEN:
            line += f". Reduce the scope by {facts.reader.date(reduction.deadline)}."
        elif reduction.status is RemediationStatus.SUCCEEDED:
            line += ". Scope reduction confirmed."
    revocation = facts.revocations.get(review.id)
    if review.decision is Decision.REVOKE and revocation is not None:
        if revocation.status is RemediationStatus.AWAITING_APPROVAL:
            line += ". Waiting for a security admin's approval."
        elif revocation.status is RemediationStatus.REJECTED:
            line += ". A security admin rejected the revocation."
    return line


def _status_line(review: Review, facts: _Context) -> str:
    if review.status is ReviewStatus.DECIDED:
        return _decided_line(review, facts)
    if review.status is ReviewStatus.EXPIRED:
        return "*Expired* unanswered when the campaign closed; it is still due."
    if review.status is ReviewStatus.CANCELLED:
        return "*Cancelled*: the identity left the review (revoked or gone)."
    return f"Handed to {name_of(review.reviewer)}; it is no longer yours to answer."


def review_blocks(review: Review, facts: _Context) -> list[Block]:
    """Return one review's blocks: evidence, then buttons or its status."""
    identity = facts.identities[review.identity_id]
    evidence = (
        f"{identity_title(identity)}\n{identity_evidence(identity, facts.reader)}\n"
        f"Review due: {facts.reader.date(review.due_at)}"
    )
    blocks = [section(evidence, block_id=f"review:{review.id}")]
    answerable = (
        review.status is ReviewStatus.PENDING
        and review.reviewer_id == facts.reviewer_id
    )
    if answerable:
        blocks.append(
            actions(
                decision_buttons(review, identity),
                block_id=f"review:{review.id}:decide",
            )
        )
    else:
        blocks.append(context(_status_line(review, facts)))
        reduction = facts.reductions.get(review.id)
        if reduction is not None and reduction.status is RemediationStatus.OPEN:
            blocks.append(
                actions(
                    [scope_reduced_button(reduction)],
                    block_id=f"review:{review.id}:reduced",
                )
            )
    blocks.append(divider())
    return blocks


def scope_reduced_button(reduction: Remediation) -> Block:
    """Return the button an owner clicks once the scope has been reduced."""
    return button(
        "Scope reduced",
        action_id=Action.SCOPE_REDUCTION_CONFIRM,
        value=str(reduction.id),
        style="primary",
        confirm=confirm_dialog(
            "Confirm the scope reduction?",
            "Confirm only once the identity's access is cut to what it needs. "
            "Confirming certifies it for one more cycle.",
            "Scope reduced",
        ),
    )


def _certify_all(reviews: Sequence[Review], facts: _Context) -> Block | None:
    standard = [
        review.id
        for review in reviews
        if review.status is ReviewStatus.PENDING
        and review.reviewer_id == facts.reviewer_id
        and facts.identities[review.identity_id].tier is RiskTier.STANDARD
    ]
    if not standard:
        return None
    count = len(standard)
    noun = "identity" if count == 1 else "identities"
    return actions(
        [
            button(
                "Certify all remaining standard-tier",
                action_id=Action.REVIEW_CERTIFY_ALL,
                value=",".join(str(review_id) for review_id in standard),
                confirm=confirm_dialog(
                    f"Certify {count} {noun}?",
                    f"Certify the {count} standard-tier {noun} still pending on this "
                    "page for one more cycle. Privileged identities stay pending: "
                    "answer them one by one.",
                    "Certify all",
                ),
            )
        ],
        block_id="reviews:certify_all",
    )


def _intro(
    session: Session, spec: ReviewPage, campaign: Campaign, reader: Reader
) -> tuple[str, str]:
    """Return the heading and the opening text of a page."""
    due = reader.date(campaign.due_at)
    name = text(campaign.name, 100)
    if campaign.status is CampaignStatus.CLOSED:
        return (
            f"Certification closed: {campaign.name}",
            f"Campaign {name} closed on {reader.date(campaign.closed_at)}; "
            "unanswered reviews expired and stay due.",
        )
    questions = (
        "For each identity: is the application that uses it still active, and "
        "is its access still the minimum it needs?"
    )
    if spec.template is Template.REVIEW_REMINDER:
        waiting = len(pending_review_ids(session, campaign.id, spec.reviewer_id))
        opening = (
            f"Reminder: {waiting} of your reviews in {name} still wait for an "
            f"answer, due *{due}*. {questions}"
        )
        if waiting > len(spec.reviews):
            opening += (
                f" The first {len(spec.reviews)} are below; the rest are in "
                "Steward's earlier messages."
            )
        return f"Reminder: certification {campaign.name}", opening
    if spec.template is Template.REVIEW_ESCALATED:
        return "Review escalated", _escalation_text(session, spec, due)
    if "handed_over" in spec.extra:
        return (
            f"Certification: {campaign.name}",
            f"This review was handed to you. Please answer by *{due}*. {questions}",
        )
    return (
        f"Certification: {campaign.name}",
        f"Please answer by *{due}*. {questions}",
    )


def _escalation_text(session: Session, spec: ReviewPage, due: str) -> str:
    source = spec.extra.get("from_person_id")
    target = spec.extra.get("to_person_id")
    previous = session.get(Person, source) if source is not None else None
    current = session.get(Person, target) if target is not None else None
    if spec.reviewer_id is not None and spec.reviewer_id == source:
        return (
            "You did not answer this review in time, so it was reassigned to "
            f"{name_of(current)}."
        )
    return (
        f"{name_of(previous)} did not answer this review in time, so it was "
        f"reassigned to {name_of(current, 'the security team')}. Please answer by "
        f"*{due}*."
    )


def build_review_page(session: Session, spec: ReviewPage, reader: Reader) -> Page:
    """Render one page of reviews from the database, in their current state."""
    campaign = session.get_one(Campaign, spec.campaign_id)
    reviews = _load_reviews(session, spec.reviews)
    facts = _Context(
        reader=reader,
        reviewer_id=spec.reviewer_id,
        identities=load_identities(session, [review.identity_id for review in reviews]),
        people=people_by_email(session, [review.decided_by for review in reviews]),
        reductions=_scope_reductions(session, spec.reviews),
        revocations=_revocations(session, spec.reviews),
    )
    title, opening = _intro(session, spec, campaign, reader)
    blocks: list[Block] = [header(title), section(opening)]
    for review in reviews:
        blocks.extend(review_blocks(review, facts))
    certify_all = _certify_all(reviews, facts)
    if certify_all is not None:
        blocks.append(certify_all)
    if spec.pages > 1:
        blocks.append(context(f"Page {spec.page} of {spec.pages}"))
    fallback = f"{text(title, 150)}: {len(reviews)} identities to review"
    return Page(text=fallback, blocks=blocks, key=spec.key, items=spec.items())


# Renderers


def _paged(
    template: Template,
    key_prefix: str,
    campaign_id: int,
    reviewer_id: int | None,
    review_ids: list[int],
    extra: dict[str, Any] | None = None,
) -> list[ReviewPage]:
    chunks = [
        review_ids[start : start + PER_PAGE]
        for start in range(0, len(review_ids), PER_PAGE)
    ]
    return [
        ReviewPage(
            template=template,
            key=f"{key_prefix}:{number}",
            campaign_id=campaign_id,
            reviewer_id=reviewer_id,
            reviews=chunk,
            page=number,
            pages=len(chunks),
            extra=dict(extra or {}),
        )
        for number, chunk in enumerate(chunks, start=1)
    ]


@renders(Template.REVIEW_REQUEST, Destination.RECIPIENT)
def render_review_request(session: Session, request: RenderRequest) -> list[Page]:
    """List the reviewer's pending reviews of the campaign, ten to a page.

    With `review_ids` in the context (a review handed over to this reviewer)
    only those reviews are listed, under a key of their own.
    """
    campaign_id = int(request.context["campaign_id"])
    reviewer_id = int(request.context["reviewer_id"])
    handed_over = request.context.get("review_ids")
    if handed_over is not None:
        review_ids = [int(review_id) for review_id in handed_over]
        prefix = f"review_request:{campaign_id}:{reviewer_id}:r{request.remediation_id}"
        extra: dict[str, Any] = {"handed_over": True}
    else:
        review_ids = pending_review_ids(session, campaign_id, reviewer_id)
        prefix = f"review_request:{campaign_id}:{reviewer_id}"
        extra = {}
    reader = reader_for(request.recipient, request.time_zone)
    specs = _paged(
        Template.REVIEW_REQUEST, prefix, campaign_id, reviewer_id, review_ids, extra
    )
    return [build_review_page(session, spec, reader) for spec in specs]


@renders(Template.REVIEW_REMINDER, Destination.RECIPIENT)
def render_review_reminder(session: Session, request: RenderRequest) -> list[Page]:
    """Repeat the first page of the reviewer's pending reviews, with the buttons."""
    campaign_id = int(request.context["campaign_id"])
    reviewer_id = int(request.context["reviewer_id"])
    round_number = int(request.context.get("round") or 1)
    review_ids = pending_review_ids(session, campaign_id, reviewer_id)[:PER_PAGE]
    if not review_ids:
        return []
    spec = ReviewPage(
        template=Template.REVIEW_REMINDER,
        key=f"review_reminder:{campaign_id}:{reviewer_id}:{round_number}",
        campaign_id=campaign_id,
        reviewer_id=reviewer_id,
        reviews=review_ids,
        extra={"round": round_number},
    )
    reader = reader_for(request.recipient, request.time_zone)
    return [build_review_page(session, spec, reader)]


@renders(Template.REVIEW_ESCALATED, Destination.RECIPIENT)
def render_review_escalated(session: Session, request: RenderRequest) -> list[Page]:
    """Tell the new reviewer (or the security team) and the previous one.

    The recipient decides the wording: the previous reviewer reads to whom it
    went, the new one gets the review with its buttons.
    """
    review_id = int(request.context["review_id"])
    recipient = request.recipient
    spec = ReviewPage(
        template=Template.REVIEW_ESCALATED,
        key=f"review_escalated:{request.remediation_id}",
        campaign_id=int(request.context["campaign_id"]),
        reviewer_id=recipient.id if recipient is not None else None,
        reviews=[review_id],
        extra={
            "from_person_id": request.context.get("from_person_id"),
            "to_person_id": request.context.get("to_person_id"),
        },
    )
    return [build_review_page(session, spec, reader_for(recipient, request.time_zone))]


# Refreshers


def _refresh(template: Template) -> Refresher:
    @refreshes(template)
    def refresh(session: Session, request: RefreshRequest) -> Page | None:
        spec = ReviewPage.from_items(template, request.key, request.items)
        if not spec.reviews:
            return None
        reader = (
            reader_for(None)
            if spec.reviewer_id is None
            else Reader(time_zone=request.time_zone)
        )
        return build_review_page(session, spec, reader)

    return refresh


refresh_review_request = _refresh(Template.REVIEW_REQUEST)
refresh_review_reminder = _refresh(Template.REVIEW_REMINDER)
refresh_review_escalated = _refresh(Template.REVIEW_ESCALATED)
