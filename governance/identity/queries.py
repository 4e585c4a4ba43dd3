"""Read-only look-ups of identities by name, by identifier and by person.

These serve interactive surfaces (the Slack command and Home tab): each
returns one page of rows with the total count, so that a caller can show
"21-40 of 300" without loading the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from governance.identity.models import Identity, identity_backup_owner
from governance.lifecycle import LIVE_STATES, IdentityState

T = TypeVar("T")

# Attributes in which connectors store an AWS ARN beside the external id
# (access keys store the ARN of their IAM user as `user_arn`).
ARN_ATTRIBUTES = ("arn", "user_arn")

# A shorter prefix matches too much of the inventory to be a look-up.
MIN_PREFIX_LENGTH = 3


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page of rows, the offset it starts at, and how many rows there are."""

    items: Sequence[T]
    total: int
    offset: int = 0

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total


@dataclass(frozen=True)
class IdentifierMatches:
    """Identities matching an identifier; `exact` is False for prefix matches."""

    listing: Listing[Identity]
    exact: bool


def _page(
    session: Session,
    condition: sa.ColumnElement[bool],
    *,
    order_by: Sequence[Any],
    offset: int,
    limit: int,
) -> Listing[Identity]:
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Identity).where(condition)
    )
    rows = session.scalars(
        sa.select(Identity)
        .where(condition)
        .options(selectinload(Identity.owner))
        .order_by(*order_by)
        .offset(offset)
        .limit(limit)
    ).all()
    return Listing(items=rows, total=total or 0, offset=offset)


def find_by_name(
    session: Session, name: str, *, limit: int, offset: int = 0
) -> Listing[Identity]:
    """Return identities named exactly `name`, or else named so ignoring case.

    Case is folded for ASCII letters only on SQLite (its `lower()`), and for
    every letter on PostgreSQL. Both queries scan the table, because no index
    covers the name.
    """
    text = name.strip()
    exact = _page(
        session,
        Identity.name == text,
        order_by=[Identity.id],
        offset=offset,
        limit=limit,
    )
    if exact.total:
        return exact
    return _page(
        session,
        sa.func.lower(Identity.name) == text.lower(),
        order_by=[Identity.id],
        offset=offset,
        limit=limit,
    )


def _arn_columns() -> list[sa.ColumnElement[str]]:
    return [Identity.attributes[key].as_string() for key in ARN_ATTRIBUTES]


def find_by_identifier(
    session: Session, text: str, *, limit: int, offset: int = 0
) -> IdentifierMatches:
    """Return identities whose external id, name or ARN attribute matches `text`.

    Exact (case-sensitive) matches win. Without any, identities whose external
    id, name or ARN starts with `text`, ignoring case, are returned, but only
    for a `text` of at least MIN_PREFIX_LENGTH characters. Both searches scan
    the table: no index covers the external id without its source.
    """
    value = text.strip()
    columns: list[sa.ColumnElement[str]] = [
        Identity.external_id,  # type: ignore[list-item]
        Identity.name,  # type: ignore[list-item]
        *_arn_columns(),
    ]
    order = [Identity.source, Identity.external_id, Identity.id]
    exact = _page(
        session,
        sa.or_(*(column == value for column in columns)),
        order_by=order,
        offset=offset,
        limit=limit,
    )
    if exact.total or len(value) < MIN_PREFIX_LENGTH:
        return IdentifierMatches(exact, exact=True)
    # substr() keeps "%" and "_" in the text literal, which LIKE would not.
    folded = value.lower()
    prefix = sa.or_(
        *(
            sa.func.lower(sa.func.substr(column, 1, len(value))) == folded
            for column in columns
        )
    )
    return IdentifierMatches(
        _page(session, prefix, order_by=order, offset=offset, limit=limit),
        exact=False,
    )


def identities_of_person(
    session: Session, person_id: int, *, limit: int, offset: int = 0
) -> Listing[Identity]:
    """Return the live identities the person owns or backs up, by name."""
    backed_up = sa.select(identity_backup_owner.c.identity_id).where(
        identity_backup_owner.c.person_id == person_id
    )
    condition = sa.and_(
        Identity.state.in_(LIVE_STATES),
        sa.or_(Identity.owner_id == person_id, Identity.id.in_(backed_up)),
    )
    return _page(
        session,
        condition,
        order_by=[Identity.name, Identity.id],
        offset=offset,
        limit=limit,
    )


def list_orphans(session: Session, *, limit: int, offset: int = 0) -> Listing[Identity]:
    """Return orphaned identities, nearest claim deadline first (none last)."""
    return _page(
        session,
        Identity.state == IdentityState.ORPHANED,
        order_by=[
            Identity.claim_deadline.is_(None),
            Identity.claim_deadline,
            Identity.id,
        ],
        offset=offset,
        limit=limit,
    )
