"""`/nhi status` and `/nhi whois`: one identity in full, or who owns an identifier."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.blocks import Block, context, divider, header, section
from bot.inventory_blocks import identity_line, range_text, text_of, words
from bot.nhi.replies import (
    PAGE_SIZE,
    CommandContext,
    Reply,
    page_buttons,
    plain_reply,
    zone_note,
)
from bot.timefmt import show_time
from governance.authz import may_act_for
from governance.errors import NotFoundError
from governance.identity.models import Identity
from governance.identity.queries import (
    MIN_PREFIX_LENGTH,
    Listing,
    find_by_identifier,
    find_by_name,
)
from governance.identity.service import find_identity
from governance.overview import OpenItems, open_items

# Longest name, description or identifier shown in a status reply.
DETAIL_TEXT_LIMIT = 1000


def status(request: CommandContext) -> Reply:
    """Build the reply to `status REF`: resolve it, check access, show it."""
    reference = request.invocation.argument
    identity = _by_id_or_source(request.session, reference)
    if identity is None:
        named = find_by_name(request.session, reference, limit=PAGE_SIZE)
        if named.total == 0:
            return plain_reply(
                f"No identity has the id, SOURCE:EXTERNAL_ID or name "
                f"“{text_of(reference)}”. `/nhi whois` also searches key ids, "
                "accessors and ARNs, and by prefix."
            )
        if named.total > 1:
            return _ambiguous(reference, named)
        identity = named.items[0]
    viewer = request.viewer
    if not may_act_for(request.settings, viewer.actor, identity):
        return plain_reply(
            f"Identity {identity.id} is not yours: you may see the status of "
            "identities you own or back up. `/nhi whois` shows who owns it."
        )
    return _status_reply(identity, open_items(request.session, identity), request)


def _by_id_or_source(session: Session, reference: str) -> Identity | None:
    text = reference.strip()
    # Such digits cannot be an id, and SQLite cannot bind them as an integer.
    # They are looked up as a name instead.
    if text.isdigit() and not (text.isascii() and len(text) <= 18):
        return None
    try:
        return find_identity(session, text)
    except NotFoundError:
        return None


def _ambiguous(reference: str, named: Listing[Identity]) -> Reply:
    blocks: list[Block] = [
        section(
            f"{named.total:,} identities are named “{text_of(reference)}”. "
            "Ask again with the id of the one you mean: `/nhi status ID`."
        ),
        *(identity_line(identity) for identity in named.items),
    ]
    if named.total > len(named.items):
        blocks.append(
            context(f"…and {named.total - len(named.items):,} more with this name.")
        )
    return Reply(text=f"{named.total} identities have this name", blocks=blocks)


def _last_used(identity: Identity, time_zone: str | None) -> str:
    if identity.never_used:
        return "never used"
    if identity.last_used_at is None:
        return "unknown"
    return show_time(identity.last_used_at, time_zone)


def _owners(identity: Identity) -> tuple[str, str]:
    if identity.owner is None:
        owner = "none: an orphan"
    else:
        owner = text_of(identity.owner.email)
        if identity.owner_origin is not None:
            owner += f" ({identity.owner_origin.value})"
    backups = ", ".join(text_of(person.email) for person in identity.backup_owners)
    return owner, backups or "none"


def _linked(identity: Identity) -> str:
    labels = [
        f"{entity.type.value} {text_of(entity.key)}"
        + (f" ({text_of(entity.name)})" if entity.name else "")
        for entity in identity.entities
    ]
    return ", ".join(labels) or "none"


def _facts(identity: Identity, time_zone: str | None) -> list[str]:
    owner, backups = _owners(identity)
    reason = identity.tier_override_reason or identity.tier_reason
    tier = identity.tier.value + (f": {text_of(reason, 600)}" if reason else "")
    facts = [
        f"*Kind*\n{text_of(identity.kind)}",
        f"*Source*\n{text_of(identity.source)}",
        f"*State*\n{words(identity.state.value)}",
        f"*Tier*\n{tier}",
        f"*Owner*\n{owner}",
        f"*Backup owners*\n{backups}",
        f"*Linked to*\n{_linked(identity)}",
        f"*Managed by a secrets manager*\n{'yes' if identity.managed else 'no'}",
        f"*Created*\n{show_time(identity.created_at, time_zone)}",
        f"*Last used*\n{_last_used(identity, time_zone)}",
        f"*Certified until*\n{show_time(identity.certified_until, time_zone)}",
        f"*Review due*\n{show_time(identity.review_due_at, time_zone)}",
    ]
    if identity.claim_deadline is not None:
        facts.append(
            f"*Claim deadline*\n{show_time(identity.claim_deadline, time_zone)}"
        )
    return facts


def _under_way(items: OpenItems, time_zone: str | None) -> list[str]:
    lines: list[str] = []
    if items.review is not None:
        review = items.review
        reviewer = (
            text_of(review.reviewer.email)
            if review.reviewer is not None
            else "the security team"
        )
        lines.append(
            f"Review {review.id} in campaign {review.campaign_id}, by {reviewer}, "
            f"due {show_time(review.due_at, time_zone)}"
        )
    if items.claim is not None:
        lines.append(
            f"Claim {items.claim.id} by {text_of(items.claim.claimant.email)}, "
            "waiting for a security admin"
        )
    lines.extend(
        f"Remediation {item.id}: {words(item.kind.value)}, {words(item.status.value)}"
        for item in items.remediations[:10]
    )
    if len(items.remediations) > 10:
        lines.append(f"…and {len(items.remediations) - 10} more remediations")
    return lines


def _status_reply(
    identity: Identity, items: OpenItems, request: CommandContext
) -> Reply:
    time_zone = request.viewer.time_zone
    facts = _facts(identity, time_zone)
    blocks: list[Block] = [
        header(identity.name),
        section(
            f"Identity {identity.id}: "
            f"{text_of(identity.source)}:{text_of(identity.external_id, 1000)}"
        ),
        section("*Facts*", fields=facts[:10]),
    ]
    if facts[10:]:
        blocks.append(section("*Dates*", fields=facts[10:]))
    if identity.description:
        blocks.append(
            section(
                f"*Description*\n{text_of(identity.description, DETAIL_TEXT_LIMIT)}"
            )
        )
    under_way = _under_way(items, time_zone)
    blocks.append(divider())
    blocks.append(
        section(
            "*Under way*\n" + ("\n".join(under_way) if under_way else "Nothing open.")
        )
    )
    blocks.append(zone_note(request.viewer))
    return Reply(text=f"Status of identity {identity.id}", blocks=blocks)


def whois(request: CommandContext) -> Reply:
    """Build the reply to `whois TEXT`: matching identities and their owners."""
    text = request.invocation.argument
    matches = find_by_identifier(
        request.session, text, limit=PAGE_SIZE, offset=request.offset
    )
    listing = matches.listing
    if listing.total == 0:
        hint = (
            f" A prefix search needs at least {MIN_PREFIX_LENGTH} characters."
            if len(text.strip()) < MIN_PREFIX_LENGTH
            else ""
        )
        return plain_reply(
            f"No identity has an external id, name or ARN that is or starts "
            f"with “{text_of(text)}”.{hint}"
        )
    kind = "matching exactly" if matches.exact else "starting with it"
    blocks: list[Block] = [
        section(f"*whois* “{text_of(text)}”: identities {kind}"),
        context(range_text(listing, "identities")),
        *(identity_line(identity) for identity in listing.items),
    ]
    buttons = page_buttons(request, listing)
    if buttons is not None:
        blocks.append(buttons)
    return Reply(text=f"{listing.total} identities match", blocks=blocks)
