"""Blocks showing identities, reviews and claims, shared by /nhi and the Home tab.

Every text taken from the inventory is escaped for mrkdwn and cut, so that a
name or identifier of any length keeps a line within Block Kit's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.blocks import Block, actions, button, context, cut, escape, section
from bot.timefmt import show_time
from governance.campaign.models import Review
from governance.claim.models import Claim
from governance.identity.models import Identity
from governance.identity.queries import Listing
from governance.textsafety import printable

# Longest name or identifier shown in a list line; `/nhi status` shows more.
LINE_TEXT_LIMIT = 150


def text_of(value: str, limit: int = LINE_TEXT_LIMIT) -> str:
    """Return user-controlled text cut to `limit` and escaped for mrkdwn.

    Control characters are shown as escapes such as `\\x1b`.
    """
    return escape(cut(printable(value), limit))


def words(value: str) -> str:
    """Return an enum value such as `under_review` as words."""
    return value.replace("_", " ")


def owner_of(identity: Identity) -> str:
    if identity.owner is None:
        return "no owner (orphan)"
    return text_of(identity.owner.email)


def identity_title(identity: Identity) -> str:
    return f"*{text_of(identity.name)}* (id {identity.id})"


def identity_line(identity: Identity) -> Block:
    """Return one section naming an identity, where it comes from and its owner."""
    return section(
        f"{identity_title(identity)}\n"
        f"{text_of(identity.source)}:{text_of(identity.external_id)}\n"
        f"{text_of(identity.kind)} · {words(identity.state.value)} · "
        f"{identity.tier.value} · owner: {owner_of(identity)}"
    )


def orphan_line(identity: Identity, time_zone: str | None) -> Block:
    """Return one section naming an orphan and its claim deadline."""
    deadline = (
        show_time(identity.claim_deadline, time_zone)
        if identity.claim_deadline is not None
        else "none set"
    )
    return section(
        f"{identity_title(identity)}\n"
        f"{text_of(identity.source)}:{text_of(identity.external_id)}\n"
        f"{text_of(identity.kind)} · {identity.tier.value} · "
        f"claim deadline: {deadline}"
    )


def review_line(review: Review, time_zone: str | None) -> Block:
    """Return one section naming a pending review's identity and due date."""
    return section(
        f"{identity_title(review.identity)} · review {review.id} in campaign "
        f"{review.campaign_id} · due {show_time(review.due_at, time_zone)}"
    )


def claim_line(claim: Claim, time_zone: str | None) -> Block:
    """Return one section naming a claimed identity and when it was claimed."""
    return section(
        f"{identity_title(claim.identity)} · claim {claim.id} requested "
        f"{show_time(claim.requested_at, time_zone)}, waiting for a security admin"
    )


def range_text(listing: Listing[Any], noun: str) -> str:
    """Return "Showing 21 to 40 of 300 NOUN", or "No NOUN." for an empty listing."""
    if listing.total == 0:
        return f"No {noun}."
    if not listing.items:
        return f"No {noun} on this page; there are {listing.total:,} in all."
    first = listing.offset + 1
    last = listing.offset + len(listing.items)
    return f"Showing {first} to {last} of {listing.total:,} {noun}."


def more_text(listing: Listing[Any], listed: int, hint: str = "") -> Block | None:
    """Return a context line counting the rows beyond the `listed` ones, if any."""
    hidden = listing.total - listed
    if hidden <= 0:
        return None
    return context(f"…and {hidden:,} more." + (f" {hint}" if hint else ""))


def paging_actions(
    listing: Listing[Any],
    *,
    page_size: int,
    previous_action: str,
    next_action: str,
    value_for: Callable[[int], str],
    block_id: str,
) -> Block | None:
    """Return Previous page / Next page buttons, or None when all fit one page.

    `value_for(offset)` makes each button's value from the offset it shows.
    """
    elements: list[Block] = []
    if listing.offset > 0:
        previous = max(listing.offset - page_size, 0)
        elements.append(
            button(
                "Previous page", action_id=previous_action, value=value_for(previous)
            )
        )
    if listing.has_more:
        following = listing.offset + len(listing.items)
        elements.append(
            button("Next page", action_id=next_action, value=value_for(following))
        )
    if not elements:
        return None
    return actions(elements, block_id=block_id)
