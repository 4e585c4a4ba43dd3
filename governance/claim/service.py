"""Claims of orphaned identities, their approval, and the claim deadline."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.models import AuditEvent
from governance.audit.service import Actor, record
from governance.authz import require_security_admin
from governance.claim.models import Claim, ClaimStatus
from governance.clock import utcnow
from governance.errors import ConflictError, NotFoundError, PermissionDeniedError
from governance.identity.models import Identity, OwnerOrigin, RiskTier
from governance.lifecycle import IdentityState
from governance.ownership.rules import adopt
from governance.person.service import find_active_person
from governance.remediation.service import queue_notification, queue_revocation
from governance.settings import Settings

logger = logging.getLogger(__name__)

# Audit action of a person saying that an orphan is not theirs.
DISOWNED = "claim.disowned"


def _record_claim(
    session: Session,
    claim: Claim,
    *,
    actor: Actor,
    action: str,
    before: ClaimStatus | None,
    reason: str = "",
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        object_type="claim",
        object_id=str(claim.id),
        before_state=before.value if before is not None else None,
        after_state=claim.status.value,
        reason=reason,
        details={"identity_id": claim.identity_id},
    )


def find_claim(session: Session, claim_id: int) -> Claim:
    """Return the claim; raise NotFoundError when unknown."""
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError("claim", str(claim_id))
    return claim


def lock_claim(session: Session, claim_id: int) -> Claim:
    """Return the claim locked for update; raise NotFoundError when unknown.

    Deciding a locked claim serialises two security admins clicking at once,
    so the second one finds the claim decided.
    """
    claim = session.scalars(
        sa.select(Claim).where(Claim.id == claim_id).with_for_update()
    ).one_or_none()
    if claim is None:
        raise NotFoundError("claim", str(claim_id))
    return claim


def pending_claim(session: Session, identity: Identity) -> Claim | None:
    """Return the identity's claim waiting for approval, if any."""
    return session.scalars(
        sa.select(Claim).where(Claim.open_identity_id == identity.id)
    ).one_or_none()


def claim_identity(session: Session, identity: Identity, *, actor: Actor) -> Claim:
    """Claim an orphan for the acting person.

    A standard identity is owned at once. A privileged one waits for a
    security admin, who is asked with a `claim_approval` notification; a
    second claim while one waits raises ConflictError. The same person
    claiming twice gets the waiting claim back.
    """
    claimant = find_active_person(session, actor.name)
    if identity.state is not IdentityState.ORPHANED:
        owner = identity.owner.email if identity.owner is not None else "nobody"
        raise ConflictError(
            f"identity {identity.id} is {identity.state.value} (owner: {owner}); "
            "only orphans can be claimed"
        )
    waiting = pending_claim(session, identity)
    if waiting is not None:
        if waiting.claimant_id == claimant.id:
            return waiting
        raise ConflictError(
            f"identity {identity.id} already has a claim waiting for approval"
        )

    privileged = identity.tier is RiskTier.PRIVILEGED
    claim = Claim(
        identity_id=identity.id,
        claimant_id=claimant.id,
        status=ClaimStatus.PENDING_APPROVAL if privileged else ClaimStatus.APPROVED,
        open_identity_id=identity.id if privileged else None,
    )
    session.add(claim)
    session.flush()
    _record_claim(session, claim, actor=actor, action="claim.requested", before=None)
    if privileged:
        queue_notification(
            session,
            actor=actor,
            dedupe_key=f"claim:{claim.id}:approval",
            recipient=None,
            template="claim_approval",
            context={"claim_id": claim.id},
            identity_id=identity.id,
        )
    else:
        claim.decided_by = actor.name
        claim.decided_at = utcnow()
        adopt(
            session,
            identity,
            claimant,
            OwnerOrigin.CLAIMED,
            actor=actor,
            action="claim.approved",
            reason="claimed a standard identity",
        )
    return claim


def decide_claim(
    session: Session,
    claim: Claim,
    *,
    approve: bool,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> Claim:
    """Approve or reject a claim waiting for a security admin.

    The claimant gets a `claim_decided` notification with the outcome.
    """
    require_security_admin(settings, actor, "decide claims")
    if approve and claim.claimant.email == actor.name:
        raise PermissionDeniedError(
            f"{actor.name} may not approve their own claim {claim.id}: another "
            "security admin must"
        )
    if claim.status is not ClaimStatus.PENDING_APPROVAL:
        raise ConflictError(
            f"claim {claim.id} was already {claim.status.value} by "
            f"{claim.decided_by} at {claim.decided_at:%Y-%m-%d %H:%M} UTC"
            if claim.decided_at
            else f"claim {claim.id} is {claim.status.value}"
        )
    before = claim.status
    claim.status = ClaimStatus.APPROVED if approve else ClaimStatus.REJECTED
    claim.open_identity_id = None
    claim.decided_by = actor.name
    claim.decided_at = utcnow()
    claim.reason = reason or None
    action = "claim.approved" if approve else "claim.rejected"
    _record_claim(
        session, claim, actor=actor, action=action, before=before, reason=reason
    )
    identity = session.get_one(Identity, claim.identity_id)
    if approve:
        if identity.state is not IdentityState.ORPHANED:
            raise ConflictError(
                f"identity {identity.id} is {identity.state.value}; the claim can "
                "no longer be approved"
            )
        claimant = find_active_person(session, claim.claimant.email)
        adopt(
            session,
            identity,
            claimant,
            OwnerOrigin.CLAIMED,
            actor=actor,
            action="owner.claimed",
            reason=f"claim {claim.id} approved",
        )
    queue_notification(
        session,
        actor=actor,
        dedupe_key=f"claim:{claim.id}:decided",
        recipient=claim.claimant.email,
        template="claim_decided",
        context={"claim_id": claim.id},
        identity_id=identity.id,
    )
    return claim


def disown(session: Session, identity: Identity, *, actor: Actor) -> bool:
    """Record that the acting person disowns an orphan.

    Nothing else changes: the orphan stays open to claims. Saying so again
    while the identity is still the same orphan records nothing and returns
    False. The identity row is locked first, so that two concurrent requests
    of one person record one event.
    """
    find_active_person(session, actor.name)
    session.refresh(identity, with_for_update=True)
    if identity.state is not IdentityState.ORPHANED:
        raise ConflictError(
            f"identity {identity.id} is {identity.state.value}; only orphans can be "
            "disowned"
        )
    earlier = sa.select(AuditEvent.seq).where(
        AuditEvent.object_type == "identity",
        AuditEvent.object_id == str(identity.id),
        AuditEvent.action == DISOWNED,
        AuditEvent.actor == actor.name,
    )
    if identity.orphaned_at is not None:
        earlier = earlier.where(AuditEvent.occurred_at >= identity.orphaned_at)
    if session.scalars(earlier.limit(1)).first() is not None:
        return False
    record(
        session,
        actor=actor,
        action=DISOWNED,
        object_type="identity",
        object_id=str(identity.id),
        before_state=identity.state.value,
        after_state=identity.state.value,
        reason=f"{actor.name} says it is not theirs",
    )
    return True


@dataclass
class ExpiryResult:
    """Orphans whose claim deadline passed, by what happened to them."""

    queued: int = 0
    awaiting_approval: int = 0


def expire_claim_deadlines(
    session: Session, *, actor: Actor, settings: Settings
) -> ExpiryResult:
    """Turn orphans past their claim deadline into revocation candidates.

    Having no accountable owner is evidence that an identity is orphaned in
    fact. The revocation waits for a security admin unless
    `ownership.revoke_unclaimed_automatically` is set; privileged identities
    always wait. An orphan with a claim waiting for approval is left alone.
    """
    now = utcnow()
    result = ExpiryResult()
    waiting = sa.select(Claim.open_identity_id).where(
        Claim.open_identity_id.is_not(None)
    )
    due = session.scalars(
        sa.select(Identity)
        .where(
            Identity.state == IdentityState.ORPHANED,
            Identity.claim_deadline < now,
            Identity.id.not_in(waiting),
        )
        .order_by(Identity.id)
    ).all()
    automatic = settings.ownership.revoke_unclaimed_automatically
    for identity in due:
        remediation = queue_revocation(
            session,
            identity,
            actor=actor,
            action="claim.deadline_passed",
            reason=f"unclaimed since {identity.orphaned_at:%Y-%m-%d}"
            if identity.orphaned_at
            else "unclaimed",
            dedupe_key=f"unclaimed:{identity.id}:{identity.claim_deadline:%Y%m%dT%H%M%S}",
            approval_required=not automatic,
        )
        if remediation.status.value == "awaiting_approval":
            result.awaiting_approval += 1
        else:
            result.queued += 1
    if due:
        logger.info(
            "claim deadline passed for %s orphans: %s queued, %s awaiting approval",
            len(due),
            result.queued,
            result.awaiting_approval,
        )
    return result
