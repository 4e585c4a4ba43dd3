"""Look-ups of people by email."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.errors import InvalidInputError, NotFoundError
from governance.person.models import Person
from governance.settings import normalize_email


def find_person(session: Session, email: str) -> Person:
    """Return the person with this email; raise NotFoundError when unknown."""
    try:
        normalized = normalize_email(email)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    person = session.scalars(
        sa.select(Person).where(Person.email == normalized)
    ).one_or_none()
    if person is None:
        raise NotFoundError("person", normalized)
    return person


def find_active_person(session: Session, email: str) -> Person:
    """Return the person, raising InvalidInputError when they are inactive."""
    person = find_person(session, email)
    if not person.active:
        raise InvalidInputError(f"{person.email} is inactive and cannot own identities")
    return person
