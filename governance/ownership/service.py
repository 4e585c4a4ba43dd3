"""Ownership: assigning owners and backups, and what happens when people leave."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from governance.audit.service import Actor, record
from governance.campaign.models import Review, ReviewStatus
from governance.clock import utcnow
from governance.errors import ConflictError
from governance.identity.models import Identity, OwnerOrigin
from governance.lifecycle import LIVE_STATES
from governance.ownership.rules import adopt, orphan
from governance.person.models import Person
from governance.person.service import find_active_person
from governance.settings import Settings

logger = logging.getLogger(__name__)


def assign_owner(
    session: Session, identity: Identity, email: str, *, actor: Actor, reason: str = ""
) -> None:
    """Make the person with `email` the owner; Steward's choice wins over sources."""
    if identity.state not in LIVE_STATES:
        raise ConflictError(
            f"identity {identity.id} is {identity.state.value}; only live identities "
            "get owners"
        )
    person = find_active_person(session, email)
    adopt(
        session,
        identity,
        person,
        OwnerOrigin.ASSIGNED,
        actor=actor,
        action="owner.assigned",
        reason=reason or f"assigned by {actor.name}",
    )


def add_backup_owner(
    session: Session, identity: Identity, email: str, *, actor: Actor
) -> bool:
    """Add a backup owner; return False when the person already is one."""
    person = find_active_person(session, email)
    if identity.owner_id == person.id:
        raise ConflictError(f"{person.email} already owns identity {identity.id}")
    if person in identity.backup_owners:
        return False
    identity.backup_owners.append(person)
    record(
        session,
        actor=actor,
        action="owner.backup_added",
        object_type="identity",
        object_id=str(identity.id),
        before_state=identity.state.value,
        after_state=identity.state.value,
        details={"backup_owner": person.email},
    )
    return True


def remove_backup_owner(
    session: Session, identity: Identity, email: str, *, actor: Actor
) -> bool:
    """Remove a backup owner; return False when the person was not one."""
    match = [
        person for person in identity.backup_owners if person.email == email.lower()
    ]
    if not match:
        return False
    identity.backup_owners.remove(match[0])
    record(
        session,
        actor=actor,
        action="owner.backup_removed",
        object_type="identity",
        object_id=str(identity.id),
        before_state=identity.state.value,
        after_state=identity.state.value,
        details={"backup_owner": match[0].email},
    )
    return True


@dataclass
class DepartureResult:
    """Counts of what the departure of one person changed."""

    inherited: int = 0
    orphaned: int = 0
    reviews_reassigned: int = 0
    reviews_to_security: int = 0


def _first_active_backup(identity: Identity, leaving: Person) -> Person | None:
    for person in identity.backup_owners:
        if person.active and person.id != leaving.id:
            return person
    return None


def handle_departure(
    session: Session, person: Person, *, actor: Actor, settings: Settings
) -> DepartureResult:
    """Apply the owner-departure rule to everything `person` was accountable for.

    Each live identity they owned passes to an active backup owner, or becomes
    an orphan. Each of their pending reviews goes to the identity's new owner,
    or to the security team (no reviewer) when there is none.
    """
    result = DepartureResult()
    owned = session.scalars(
        sa.select(Identity)
        .where(Identity.owner_id == person.id, Identity.state.in_(LIVE_STATES))
        .options(selectinload(Identity.backup_owners))
        .order_by(Identity.id)
    ).all()
    reason = f"owner {person.email} left"
    for identity in owned:
        backup = _first_active_backup(identity, person)
        if backup is not None:
            adopt(
                session,
                identity,
                backup,
                OwnerOrigin.INHERITED,
                actor=actor,
                action="owner.departed",
                reason=f"{reason}; backup owner {backup.email} takes over",
            )
            result.inherited += 1
        else:
            orphan(
                session,
                identity,
                actor=actor,
                action="owner.departed",
                reason=f"{reason}; no active backup owner",
                claim_deadline_days=settings.ownership.claim_deadline_days,
            )
            result.orphaned += 1

    reviews = session.scalars(
        sa.select(Review)
        .where(Review.reviewer_id == person.id, Review.status == ReviewStatus.PENDING)
        .order_by(Review.id)
    ).all()
    for review in reviews:
        identity = session.get_one(Identity, review.identity_id)
        new_reviewer = identity.owner if identity.owner_id != person.id else None
        if new_reviewer is not None and not new_reviewer.active:
            new_reviewer = None
        review.reviewer_id = new_reviewer.id if new_reviewer is not None else None
        record(
            session,
            actor=actor,
            action="review.reassigned",
            object_type="review",
            object_id=str(review.id),
            before_state=review.status.value,
            after_state=review.status.value,
            reason=reason,
            details={
                "from": person.email,
                "to": new_reviewer.email
                if new_reviewer is not None
                else "security team",
            },
        )
        if new_reviewer is None:
            result.reviews_to_security += 1
        else:
            result.reviews_reassigned += 1
    logger.info(
        "departure of %s: %s identities inherited, %s orphaned, %s reviews reassigned",
        person.email,
        result.inherited,
        result.orphaned,
        result.reviews_reassigned + result.reviews_to_security,
    )
    return result


def deactivate_departed(
    session: Session, person: Person, *, actor: Actor, settings: Settings, reason: str
) -> DepartureResult | None:
    """Deactivate a person who left, then apply the owner-departure rule.

    Returns None, changing nothing, when the person is already inactive, so
    a repeated notice of the same departure is harmless. The person row is
    locked first, so that two concurrent notices apply the rule once.
    """
    session.refresh(person, with_for_update=True)
    if not person.active:
        return None
    person.active = False
    person.deactivated_at = utcnow()
    record(
        session,
        actor=actor,
        action="person.deactivated",
        object_type="person",
        object_id=person.email,
        reason=reason,
    )
    session.flush()
    return handle_departure(session, person, actor=actor, settings=settings)
