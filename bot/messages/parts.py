"""Pieces shared by the renderers: who reads, how times and identities show.

Every value that comes from a source or a user (names, descriptions, scope
summaries) is escaped and cut to its own budget here, so that one very long
field cannot push the others out of a section's 3,000 characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from bot.blocks import cut, escape
from bot.timefmt import show_date, show_time
from governance.clock import as_utc
from governance.identity.models import Identity
from governance.person.models import Person

NAME_LIMIT = 200
LABEL_LIMIT = 100
SCOPE_LIMIT = 600
REASON_LIMIT = 300
DESCRIPTION_LIMIT = 300
SHOWN_ENTITIES = 5
SECURITY_TEAM = "the security team"


@dataclass(frozen=True)
class Reader:
    """Who reads a message: one person in their time zone, or a whole channel.

    A channel message shows times with Slack's date formatting, which each
    reader's client renders in their own zone. The UTC text is the fallback
    for clients that cannot do so.
    """

    time_zone: str | None = None
    shared: bool = False

    def time(self, value: datetime | None) -> str:
        if value is None or not self.shared:
            return show_time(value, self.time_zone)
        stamp = int(as_utc(value).timestamp())
        return f"<!date^{stamp}^{{date_num}} {{time}}|{show_time(value, 'UTC')}>"

    def date(self, value: datetime | None) -> str:
        if value is None or not self.shared:
            return show_date(value, self.time_zone)
        stamp = int(as_utc(value).timestamp())
        return f"<!date^{stamp}^{{date_num}}|{show_date(value, 'UTC')}>"


CHANNEL = Reader(shared=True)


def reader_for(person: Person | None, time_zone: str | None = None) -> Reader:
    """Return the reader of a direct message to `person`, or a channel's."""
    if person is None:
        return CHANNEL
    return Reader(time_zone=time_zone or person.time_zone)


def text(value: str | None, limit: int) -> str:
    """Return user-controlled text escaped for mrkdwn and cut to `limit`."""
    return escape(cut(" ".join((value or "").split()), limit))


def name_of(person: Person | None, default: str = SECURITY_TEAM) -> str:
    """Return a person's display name (or email) for a message."""
    if person is None:
        return default
    return text(person.display_name or person.email, LABEL_LIMIT)


def name_for_email(people: dict[str, Person], email: str | None) -> str:
    """Return the display name behind an actor's email, or the email itself."""
    if not email:
        return "someone"
    person = people.get(email)
    return name_of(person) if person is not None else text(email, LABEL_LIMIT)


def people_by_email(
    session: Session, emails: Iterable[str | None]
) -> dict[str, Person]:
    unique = sorted({email for email in emails if email})
    if not unique:
        return {}
    found = session.scalars(sa.select(Person).where(Person.email.in_(unique)))
    return {person.email: person for person in found}


def load_identities(session: Session, ids: Iterable[int]) -> dict[int, Identity]:
    """Read identities with their owner, backup owners and linked entities."""
    unique = sorted(set(ids))
    if not unique:
        return {}
    found = session.scalars(
        sa.select(Identity)
        .where(Identity.id.in_(unique))
        .options(
            selectinload(Identity.owner),
            selectinload(Identity.backup_owners),
            selectinload(Identity.entities),
        )
    )
    return {identity.id: identity for identity in found}


def identity_title(identity: Identity) -> str:
    return f"*{text(identity.name, NAME_LIMIT)}*"


def last_used(identity: Identity, reader: Reader) -> str:
    if identity.never_used:
        return "never used"
    if identity.last_used_at is None:
        return "unknown"
    return reader.date(identity.last_used_at)


def linked_entities(identity: Identity) -> str:
    if not identity.entities:
        return "none"
    listed = [
        f"{entity.type.value} {text(entity.key, LABEL_LIMIT)}"
        + (f" ({text(entity.name, LABEL_LIMIT)})" if entity.name else "")
        + (" (closed)" if entity.status.value == "closed" else "")
        for entity in identity.entities[:SHOWN_ENTITIES]
    ]
    more = len(identity.entities) - SHOWN_ENTITIES
    if more > 0:
        listed.append(f"and {more} more")
    return ", ".join(listed)


def identity_evidence(identity: Identity, reader: Reader) -> str:
    """Return what a reviewer needs to judge an identity, one fact a line."""
    tier = f"*{identity.tier.value}*"
    if identity.tier_reason:
        tier += f" ({text(identity.tier_reason, REASON_LIMIT)})"
    created = reader.date(identity.created_at) if identity.created_at else "unknown"
    lines = [
        f"{text(identity.kind, LABEL_LIMIT)} in {text(identity.source, LABEL_LIMIT)}: "
        f"{text(identity.external_id, LABEL_LIMIT)}",
        f"Scope: {text(identity.scope_summary, SCOPE_LIMIT) or 'not reported'}",
        f"Risk tier: {tier}",
        f"Created: {created} · Last used: {last_used(identity, reader)}",
        f"Linked to: {linked_entities(identity)}",
    ]
    if identity.description:
        lines.append(f"Description: {text(identity.description, DESCRIPTION_LIMIT)}")
    return "\n".join(lines)


def owner_line(identity: Identity) -> str:
    backups = ", ".join(name_of(person) for person in identity.backup_owners[:3])
    line = f"Owner: {name_of(identity.owner, 'none')}"
    return line + (f" · Backup owners: {backups}" if backups else "")
