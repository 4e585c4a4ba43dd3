"""Builders of rows for arranging tests."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person

_counter = itertools.count(1)


def make_person(session: Session, email: str | None = None, **fields: Any) -> Person:
    number = next(_counter)
    person = Person(
        email=email or f"person{number}@example.com",
        display_name=fields.pop("display_name", f"Person {number}"),
        **fields,
    )
    session.add(person)
    session.flush()
    return person


def make_identity(
    session: Session,
    *,
    state: IdentityState = IdentityState.OWNED,
    tier: RiskTier = RiskTier.STANDARD,
    owner: Person | None = None,
    **fields: Any,
) -> Identity:
    number = next(_counter)
    identity = Identity(
        source=fields.pop("source", "vault-main"),
        kind=fields.pop("kind", "approle_secret_id"),
        external_id=fields.pop("external_id", f"accessor-{number}"),
        name=fields.pop("name", f"identity-{number}"),
        tier=tier,
        detected_tier=tier,
        state=state,
        owner=owner,
        **fields,
    )
    session.add(identity)
    session.flush()
    return identity
