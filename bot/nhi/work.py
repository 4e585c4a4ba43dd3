"""`/nhi mine` and `/nhi orphans`: paged lists of identities and pending work."""

from __future__ import annotations

from bot.blocks import Block, context, divider, header, section
from bot.inventory_blocks import (
    claim_line,
    identity_line,
    more_text,
    orphan_line,
    range_text,
    review_line,
)
from bot.nhi.replies import PAGE_SIZE, CommandContext, Reply, page_buttons, zone_note
from governance.identity.queries import identities_of_person, list_orphans
from governance.overview import pending_claims, pending_reviews

# Pending reviews and claims shown on the first page of `mine`; the Home tab
# and the review messages show them too.
REVIEWS_SHOWN = 8
CLAIMS_SHOWN = 5


def mine(request: CommandContext) -> Reply:
    """Build the reply to `mine`: the viewer's identities, reviews and claims."""
    session = request.session
    person = request.viewer.person
    listing = identities_of_person(
        session, person.id, limit=PAGE_SIZE, offset=request.offset
    )
    blocks: list[Block] = [
        header("Your identities"),
        context(range_text(listing, "live identities you own or back up")),
        *(identity_line(identity) for identity in listing.items),
    ]
    buttons = page_buttons(request, listing)
    if buttons is not None:
        blocks.append(buttons)
    if request.offset == 0:
        blocks.extend(_pending_work(request))
    blocks.append(zone_note(request.viewer))
    return Reply(
        text=f"You own or back up {listing.total} live identities", blocks=blocks
    )


def _pending_work(request: CommandContext) -> list[Block]:
    session = request.session
    person = request.viewer.person
    time_zone = request.viewer.time_zone
    reviews = pending_reviews(session, person.id, limit=REVIEWS_SHOWN)
    claims = pending_claims(session, person.id, limit=CLAIMS_SHOWN)
    blocks: list[Block] = [
        divider(),
        section(f"*Reviews waiting for you: {reviews.total:,}*"),
    ]
    blocks.extend(review_line(review, time_zone) for review in reviews.items)
    more = more_text(reviews, len(reviews.items), "They are listed in the Home tab.")
    if more is not None:
        blocks.append(more)
    blocks.append(section(f"*Your claims waiting for approval: {claims.total:,}*"))
    blocks.extend(claim_line(claim, time_zone) for claim in claims.items)
    more = more_text(claims, len(claims.items))
    if more is not None:
        blocks.append(more)
    return blocks


def orphans(request: CommandContext) -> Reply:
    """Build the reply to `orphans`: orphans with their claim deadlines."""
    listing = list_orphans(request.session, limit=PAGE_SIZE, offset=request.offset)
    time_zone = request.viewer.time_zone
    blocks: list[Block] = [
        header("Orphans"),
        context(range_text(listing, "orphaned identities")),
        *(orphan_line(identity, time_zone) for identity in listing.items),
    ]
    buttons = page_buttons(request, listing)
    if buttons is not None:
        blocks.append(buttons)
    blocks.append(zone_note(request.viewer))
    return Reply(text=f"{listing.total} orphaned identities", blocks=blocks)
