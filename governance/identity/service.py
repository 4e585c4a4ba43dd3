"""Reading the inventory: look-ups and filtered listings of identities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from governance.errors import NotFoundError
from governance.identity.models import Identity, RiskTier
from governance.ids import parse_database_id
from governance.lifecycle import IdentityState
from governance.person.models import Person


@dataclass(frozen=True)
class IdentityFilter:
    """Conditions for listing identities; None means any."""

    state: IdentityState | None = None
    owner_email: str | None = None
    source: str | None = None
    tier: RiskTier | None = None


def find_identity(session: Session, reference: str) -> Identity:
    """Return the identity named by its id or by `SOURCE:EXTERNAL_ID`.

    The external id may itself contain colons (ARNs do); the source name never
    does, so the reference splits at the first colon.
    """
    text = reference.strip()
    statement = sa.select(Identity).options(
        selectinload(Identity.owner),
        selectinload(Identity.backup_owners),
        selectinload(Identity.entities),
    )
    if text.isdigit():
        # Unicode digits and numbers beyond the database's integers name no
        # identity, so they are not found instead of failing the query.
        identity_id = parse_database_id(text)
        if identity_id is None:
            raise NotFoundError("identity", reference)
        statement = statement.where(Identity.id == identity_id)
    else:
        source, separator, external_id = text.partition(":")
        if not separator or not source or not external_id:
            raise NotFoundError("identity", reference)
        statement = statement.where(
            Identity.source == source, Identity.external_id == external_id
        )
    identity = session.execute(statement).scalar_one_or_none()
    if identity is None:
        raise NotFoundError("identity", reference)
    return identity


def list_identities(
    session: Session,
    conditions: IdentityFilter,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[Identity]:
    """Return identities matching `conditions`, ordered by id."""
    statement = (
        sa.select(Identity)
        .options(selectinload(Identity.owner))
        .order_by(Identity.id)
        .offset(offset)
    )
    if conditions.state is not None:
        statement = statement.where(Identity.state == conditions.state)
    if conditions.source is not None:
        statement = statement.where(Identity.source == conditions.source)
    if conditions.tier is not None:
        statement = statement.where(Identity.tier == conditions.tier)
    if conditions.owner_email is not None:
        statement = statement.join(Person, Identity.owner_id == Person.id).where(
            Person.email == conditions.owner_email.strip().lower()
        )
    if limit is not None:
        statement = statement.limit(limit)
    return session.execute(statement).scalars().all()
