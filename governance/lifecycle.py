"""The NHI lifecycle state machine: every state and every allowed transition.

This module is the only place that changes `Identity.state`. Each transition
is validated against `ALLOWED_TRANSITIONS` and writes exactly one audit event
in the caller's transaction, so the state and its evidence commit together.

    discovered -> owned | orphaned
    orphaned   -> owned (claim, assignment)
               -> revocation_approval | revocation_pending (claim deadline passed)
    owned      -> under_review -> owned (certified, or review expired)
                               -> scope_reduction_pending -> owned (reduced)
                               -> revocation_approval | revocation_pending
    revocation_approval -> revocation_pending (approved) | owned | orphaned (rejected)
    revocation_pending  -> revoked (verified)
                        -> disabled (first stage of a staged revocation)
                        -> revocation_failed (needs a human)
                        -> owned | orphaned (cancelled)
    disabled            -> revoked (deleted after the grace period)
                        -> owned | orphaned (undone) | revocation_failed
    revocation_failed   -> revocation_pending (retried) | revoked (confirmed by
                           a human) | owned | orphaned (cancelled)
    (new)               -> owned | orphaned (first discovered)
    any state but gone  -> gone (the source no longer reports it)
    gone                -> owned | orphaned (reported again)
    revoked             -> revocation_failed (still reported by its source)

An identity is never deleted: `gone` and `revoked` keep the row and its trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from governance.audit.service import Actor, EventSpec, record, record_many
from governance.clock import utcnow
from governance.errors import InvalidTransitionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from governance.identity.models import Identity


class IdentityState(StrEnum):
    """Lifecycle state of one non-human identity."""

    DISCOVERED = "discovered"
    OWNED = "owned"
    ORPHANED = "orphaned"
    UNDER_REVIEW = "under_review"
    SCOPE_REDUCTION_PENDING = "scope_reduction_pending"
    REVOCATION_APPROVAL = "revocation_approval"
    REVOCATION_PENDING = "revocation_pending"
    DISABLED = "disabled"
    REVOKED = "revoked"
    REVOCATION_FAILED = "revocation_failed"
    GONE = "gone"


S = IdentityState

ALLOWED_TRANSITIONS: dict[IdentityState, frozenset[IdentityState]] = {
    S.DISCOVERED: frozenset({S.OWNED, S.ORPHANED, S.GONE}),
    S.ORPHANED: frozenset(
        {S.OWNED, S.REVOCATION_APPROVAL, S.REVOCATION_PENDING, S.GONE}
    ),
    S.OWNED: frozenset(
        {
            S.ORPHANED,
            S.UNDER_REVIEW,
            S.SCOPE_REDUCTION_PENDING,
            S.REVOCATION_APPROVAL,
            S.REVOCATION_PENDING,
            S.GONE,
        }
    ),
    S.UNDER_REVIEW: frozenset(
        {
            S.OWNED,
            S.ORPHANED,
            S.SCOPE_REDUCTION_PENDING,
            S.REVOCATION_APPROVAL,
            S.REVOCATION_PENDING,
            S.GONE,
        }
    ),
    S.SCOPE_REDUCTION_PENDING: frozenset(
        {S.OWNED, S.ORPHANED, S.REVOCATION_APPROVAL, S.REVOCATION_PENDING, S.GONE}
    ),
    S.REVOCATION_APPROVAL: frozenset(
        {S.REVOCATION_PENDING, S.OWNED, S.ORPHANED, S.GONE}
    ),
    S.REVOCATION_PENDING: frozenset(
        {S.REVOKED, S.DISABLED, S.REVOCATION_FAILED, S.OWNED, S.ORPHANED, S.GONE}
    ),
    S.DISABLED: frozenset(
        {S.REVOKED, S.REVOCATION_FAILED, S.OWNED, S.ORPHANED, S.GONE}
    ),
    S.REVOCATION_FAILED: frozenset(
        {S.REVOCATION_PENDING, S.REVOKED, S.OWNED, S.ORPHANED, S.GONE}
    ),
    S.REVOKED: frozenset({S.GONE, S.REVOCATION_FAILED}),
    S.GONE: frozenset({S.OWNED, S.ORPHANED}),
}

# States a new identity may start in: owned when it has an active owner.
INITIAL_STATES: frozenset[IdentityState] = frozenset({S.OWNED, S.ORPHANED})

# States in which the credential may still work and governance still applies.
LIVE_STATES: frozenset[IdentityState] = frozenset(
    {
        S.DISCOVERED,
        S.OWNED,
        S.ORPHANED,
        S.UNDER_REVIEW,
        S.SCOPE_REDUCTION_PENDING,
        S.REVOCATION_APPROVAL,
        S.REVOCATION_PENDING,
        S.DISABLED,
        S.REVOCATION_FAILED,
    }
)

# Live states from which a revocation may be requested.
REVOCABLE_STATES: frozenset[IdentityState] = frozenset(
    {S.OWNED, S.ORPHANED, S.UNDER_REVIEW, S.SCOPE_REDUCTION_PENDING}
)


def initial_state(has_active_owner: bool) -> IdentityState:
    """Return the state a newly discovered identity starts in."""
    return S.OWNED if has_active_owner else S.ORPHANED


def can_transition(current: IdentityState, target: IdentityState) -> bool:
    """Return whether the state machine allows `current` -> `target`."""
    return target in ALLOWED_TRANSITIONS[current]


def transition(
    session: Session,
    identity: Identity,
    target: IdentityState,
    *,
    actor: Actor,
    action: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Move `identity` to `target` and append its audit event.

    Raises InvalidTransitionError, changing nothing, when the state machine does
    not allow the move. The caller commits; the state and the audit event land
    in the same transaction or not at all.
    """
    current = IdentityState(identity.state)
    if not can_transition(current, target):
        raise InvalidTransitionError(identity.id, current.value, target.value)

    now = utcnow()
    identity.state = target
    identity.state_changed_at = now
    if target is S.GONE:
        identity.gone_at = now
    elif current is S.GONE:
        identity.gone_at = None
    session.flush()
    record(
        session,
        actor=actor,
        action=action,
        object_type="identity",
        object_id=str(identity.id),
        before_state=current.value,
        after_state=target.value,
        reason=reason,
        details=details,
    )


def transition_many(
    session: Session,
    identity_ids: Sequence[int],
    current: IdentityState,
    target: IdentityState,
    *,
    actor: Actor,
    action: str,
    reason: str,
) -> list[int]:
    """Move every listed identity still in `current` to `target`, in bulk.

    Identities no longer in `current` are skipped, so a concurrent change is
    never overwritten. Returns the ids that moved; each gets one audit event.
    """
    from governance.identity.models import Identity  # noqa: PLC0415 - import cycle

    if not can_transition(current, target):
        raise InvalidTransitionError(
            identity_ids[0] if identity_ids else 0, current.value, target.value
        )
    moved: list[int] = []
    now = utcnow()
    returning = session.get_bind().dialect.update_returning
    for start in range(0, len(identity_ids), 1000):
        chunk = list(identity_ids[start : start + 1000])
        update = (
            sa.update(Identity)
            .where(Identity.id.in_(chunk), Identity.state == current)
            .values(state=target, state_changed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if returning:
            # The rows the UPDATE changed, with no second read.
            ids = sorted(session.scalars(update.returning(Identity.id)))
        else:
            ids = list(
                session.scalars(
                    sa.select(Identity.id)
                    .where(Identity.id.in_(chunk), Identity.state == current)
                    .order_by(Identity.id)
                )
            )
            if ids:
                session.execute(update)
        # Events per chunk keep memory flat however many identities move.
        record_many(
            session,
            actor,
            [
                EventSpec(
                    action=action,
                    object_type="identity",
                    object_id=str(identity_id),
                    before_state=current.value,
                    after_state=target.value,
                    reason=reason,
                )
                for identity_id in ids
            ],
        )
        moved.extend(ids)
    return moved
