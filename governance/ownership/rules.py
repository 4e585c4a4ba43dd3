"""Moving identities between owned and orphaned, with the claim deadline.

Each function writes exactly one audit event: the state transition when the
state changes, otherwise an event recording the change of owner.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from governance.audit.service import Actor, record
from governance.clock import utcnow
from governance.identity.models import Identity, OwnerOrigin
from governance.lifecycle import IdentityState, transition
from governance.person.models import Person


def start_claim_window(identity: Identity, claim_deadline_days: int) -> None:
    """Stamp when the identity became an orphan and until when it can be claimed."""
    now = utcnow()
    identity.orphaned_at = now
    identity.claim_deadline = now + timedelta(days=claim_deadline_days)


def _record_owner_change(
    session: Session,
    identity: Identity,
    *,
    actor: Actor,
    action: str,
    reason: str,
    details: dict[str, Any],
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        object_type="identity",
        object_id=str(identity.id),
        before_state=identity.state.value,
        after_state=identity.state.value,
        reason=reason,
        details=details,
    )


def orphan(
    session: Session,
    identity: Identity,
    *,
    actor: Actor,
    action: str,
    reason: str,
    claim_deadline_days: int,
) -> None:
    """Remove the owner; an owned identity moves to `orphaned`.

    In any other live state (under review, for example) the state stays and
    only the owner is cleared, so that a pending review or revocation goes on.
    """
    previous = identity.owner.email if identity.owner is not None else None
    identity.owner = None
    identity.owner_id = None
    identity.owner_origin = None
    start_claim_window(identity, claim_deadline_days)
    details = {"previous_owner": previous}
    if identity.state is IdentityState.OWNED:
        transition(
            session,
            identity,
            IdentityState.ORPHANED,
            actor=actor,
            action=action,
            reason=reason,
            details=details,
        )
    else:
        _record_owner_change(
            session,
            identity,
            actor=actor,
            action=action,
            reason=reason,
            details=details,
        )


def adopt(
    session: Session,
    identity: Identity,
    owner: Person,
    origin: OwnerOrigin,
    *,
    actor: Actor,
    action: str,
    reason: str,
) -> None:
    """Make `owner` the owner; an orphan moves to `owned`."""
    previous = identity.owner.email if identity.owner is not None else None
    identity.owner = owner
    identity.owner_id = owner.id
    identity.owner_origin = origin
    identity.orphaned_at = None
    identity.claim_deadline = None
    details = {"owner": owner.email, "previous_owner": previous, "origin": origin.value}
    if identity.state is IdentityState.ORPHANED:
        transition(
            session,
            identity,
            IdentityState.OWNED,
            actor=actor,
            action=action,
            reason=reason,
            details=details,
        )
    else:
        _record_owner_change(
            session,
            identity,
            actor=actor,
            action=action,
            reason=reason,
            details=details,
        )


def initial_owner_state(identity: Identity) -> IdentityState:
    """Return owned or orphaned, by whether the identity has an active owner."""
    if identity.owner is not None and identity.owner.active:
        return IdentityState.OWNED
    return IdentityState.ORPHANED
