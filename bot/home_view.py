"""The App Home view: the viewer's identities and pending work, and for security
admins the state of the programme.

A Home view holds at most 100 blocks, so each list shows a bounded number of
rows with its total: the identities are paged, and the reviews, claims and
campaigns show the first few with a count of the rest.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.blocks import (
    MAX_VIEW_BLOCKS,
    Block,
    button,
    check_blocks,
    context,
    divider,
    escape,
    header,
    section,
)
from bot.inventory_blocks import (
    claim_line,
    identity_line,
    more_text,
    paging_actions,
    range_text,
    review_line,
    text_of,
)
from bot.timefmt import show_time
from bot.viewer import Viewer
from governance.campaign.models import Campaign
from governance.campaign.service import campaign_counts
from governance.clock import utcnow
from governance.identity.queries import identities_of_person
from governance.overview import (
    open_campaigns,
    orphan_count,
    pending_claims,
    pending_reviews,
    remediation_counts,
)

IDENTITIES_PER_PAGE = 20
REVIEWS_SHOWN = 10
CLAIMS_SHOWN = 5
CAMPAIGNS_SHOWN = 5


class HomeAction(StrEnum):
    """Action ids of the Home tab's buttons; each value is an offset."""

    REFRESH = "home_refresh"
    PREVIOUS_PAGE = "home_page_previous"
    NEXT_PAGE = "home_page_next"


def home_view(session: Session, viewer: Viewer, *, offset: int = 0) -> dict[str, Any]:
    """Return the Home view for `viewer`, showing their identities from `offset`."""
    blocks = [
        *_heading(viewer, offset),
        *_identities(session, viewer, offset),
        *_reviews_and_claims(session, viewer),
    ]
    if viewer.is_admin:
        blocks.extend(_security_overview(session, viewer))
    check_blocks(blocks, limit=MAX_VIEW_BLOCKS)
    return {"type": "home", "blocks": blocks}


def unknown_person_view(explanation: str) -> dict[str, Any]:
    """Return the Home view for a Slack user who is not one of Steward's people."""
    blocks = [
        header("Steward"),
        section(escape(explanation)),
        section(
            "Steward shows here the non-human identities you own and the reviews "
            "and claims waiting for you, once you are in its people directory."
        ),
    ]
    return {"type": "home", "blocks": blocks}


def _heading(viewer: Viewer, offset: int) -> list[Block]:
    refresh = button("Refresh", action_id=HomeAction.REFRESH, value=str(offset))
    updated = show_time(utcnow(), viewer.time_zone)
    return [
        header("Steward"),
        section(
            "Your non-human identities and the work waiting for you.",
            accessory=refresh,
        ),
        context(
            f"Updated {updated}. Times are in {escape(viewer.time_zone or 'UTC')}."
        ),
    ]


def _identities(session: Session, viewer: Viewer, offset: int) -> list[Block]:
    listing = identities_of_person(
        session, viewer.person.id, limit=IDENTITIES_PER_PAGE, offset=offset
    )
    blocks: list[Block] = [
        divider(),
        header(f"Your identities ({listing.total:,})"),
        context(range_text(listing, "live identities you own or back up")),
        *(identity_line(identity) for identity in listing.items),
    ]
    buttons = paging_actions(
        listing,
        page_size=IDENTITIES_PER_PAGE,
        previous_action=HomeAction.PREVIOUS_PAGE,
        next_action=HomeAction.NEXT_PAGE,
        value_for=str,
        block_id="home_paging",
    )
    if buttons is not None:
        blocks.append(buttons)
    return blocks


def _reviews_and_claims(session: Session, viewer: Viewer) -> list[Block]:
    time_zone = viewer.time_zone
    reviews = pending_reviews(session, viewer.person.id, limit=REVIEWS_SHOWN)
    claims = pending_claims(session, viewer.person.id, limit=CLAIMS_SHOWN)
    blocks: list[Block] = [
        divider(),
        header(f"Reviews waiting for you ({reviews.total:,})"),
    ]
    if not reviews.items:
        blocks.append(section("None."))
    blocks.extend(review_line(review, time_zone) for review in reviews.items)
    more = more_text(
        reviews, len(reviews.items), "Reply the first ones to see the next."
    )
    if more is not None:
        blocks.append(more)
    blocks.append(header(f"Your claims waiting for approval ({claims.total:,})"))
    if not claims.items:
        blocks.append(section("None."))
    blocks.extend(claim_line(claim, time_zone) for claim in claims.items)
    more = more_text(claims, len(claims.items))
    if more is not None:
        blocks.append(more)
    return blocks


def _campaign_line(session: Session, campaign: Campaign, viewer: Viewer) -> Block:
    counts = campaign_counts(session, campaign)
    return section(
        f"*{text_of(campaign.name)}* (campaign {campaign.id}) · due "
        f"{show_time(campaign.due_at, viewer.time_zone)}\n"
        f"{counts.decided:,} of {counts.total:,} decided · {counts.pending:,} "
        f"pending ({counts.overdue:,} overdue) · {counts.orphans:,} orphans"
    )


def _security_overview(session: Session, viewer: Viewer) -> list[Block]:
    remediations = remediation_counts(session)
    campaigns = open_campaigns(session, limit=CAMPAIGNS_SHOWN)
    blocks: list[Block] = [
        divider(),
        header("Security overview"),
        section(f"*Orphans:* {orphan_count(session):,}"),
        section(
            "*Open revocations and scope reductions*",
            fields=[
                f"*Awaiting approval*\n{remediations.awaiting_approval:,}",
                f"*Pending*\n{remediations.pending:,}",
                f"*Staged or open*\n{remediations.open:,}",
                f"*Needs a human*\n{remediations.needs_human:,}",
            ],
        ),
        header(f"Open campaigns ({campaigns.total:,})"),
    ]
    if not campaigns.items:
        blocks.append(section("None."))
    blocks.extend(
        _campaign_line(session, campaign, viewer) for campaign in campaigns.items
    )
    more = more_text(
        campaigns, len(campaigns.items), "Follow each with `/nhi campaign status ID`."
    )
    if more is not None:
        blocks.append(more)
    return blocks
