"""Operator actions on the outbox: approve, reject, retry, cancel, confirm,
undo, and the emergency stop."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.audit.service import Actor, record
from governance.authz import may_act_for, require_security_admin
from governance.campaign.decision import certify
from governance.clock import utcnow
from governance.control.models import Switch
from governance.errors import ConflictError, NotFoundError, PermissionDeniedError
from governance.identity.models import Identity
from governance.lifecycle import IdentityState, transition
from governance.ownership.rules import initial_owner_state
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.service import queue_notification
from governance.settings import Settings

PAUSE_SWITCH = "remediation.paused"
# Names of system actors start with this (see `Actor.system`).
SYSTEM_ACTOR_PREFIX = "system:"

S = RemediationStatus
FINISHED = frozenset({S.SUCCEEDED, S.ALREADY_GONE, S.CANCELLED, S.REJECTED})
# Kinds whose work can be done outside Steward and confirmed by a person.
CONFIRMABLE_KINDS = frozenset(
    {
        RemediationKind.REVOKE,
        RemediationKind.MANUAL_REVOKE,
        RemediationKind.SCOPE_REDUCTION,
    }
)


def find_remediation(session: Session, remediation_id: int) -> Remediation:
    """Return the outbox row locked for update; raise NotFoundError when unknown."""
    remediation = session.scalars(
        sa.select(Remediation).where(Remediation.id == remediation_id).with_for_update()
    ).one_or_none()
    if remediation is None:
        raise NotFoundError("remediation", str(remediation_id))
    return remediation


def list_remediations(
    session: Session, *, status: RemediationStatus | None = None, limit: int = 200
) -> Sequence[Remediation]:
    """Return outbox rows, newest first, optionally with one status."""
    statement = sa.select(Remediation).order_by(Remediation.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(Remediation.status == status)
    return session.scalars(statement).all()


def _record(
    session: Session,
    remediation: Remediation,
    before: RemediationStatus,
    *,
    actor: Actor,
    action: str,
    reason: str = "",
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        object_type="remediation",
        object_id=str(remediation.id),
        before_state=before.value,
        after_state=remediation.status.value,
        reason=reason,
        details={
            "kind": remediation.kind.value,
            "identity_id": remediation.identity_id,
        },
    )


def _identity(session: Session, remediation: Remediation) -> Identity:
    if remediation.identity_id is None:
        raise ConflictError(f"remediation {remediation.id} concerns no identity")
    return session.get_one(Identity, remediation.identity_id)


def decide_approval(
    session: Session,
    remediation: Remediation,
    *,
    approve: bool,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> Remediation:
    """Approve or reject a revocation waiting for a security admin.

    A person who requested the revocation gets a `remediation_decided`
    notification with the outcome. A system job gets none.
    """
    require_security_admin(settings, actor, "approve revocations")
    if approve and remediation.requested_by == actor.name:
        raise PermissionDeniedError(
            f"{actor.name} may not approve the revocation they requested "
            f"(remediation {remediation.id}): another security admin must"
        )
    if remediation.status is not S.AWAITING_APPROVAL:
        raise ConflictError(
            f"remediation {remediation.id} is {remediation.status.value}, "
            "not awaiting approval"
        )
    identity = _identity(session, remediation)
    before = remediation.status
    remediation.approved_by = actor.name
    if approve:
        remediation.status = S.PENDING
        remediation.next_attempt_at = utcnow()
        transition(
            session,
            identity,
            IdentityState.REVOCATION_PENDING,
            actor=actor,
            action="remediation.approved",
            reason=reason or f"remediation {remediation.id} approved",
        )
    else:
        remediation.status = S.REJECTED
        remediation.completed_at = utcnow()
        transition(
            session,
            identity,
            initial_owner_state(identity),
            actor=actor,
            action="remediation.rejected",
            reason=reason or f"remediation {remediation.id} rejected",
        )
    _record(
        session,
        remediation,
        before,
        actor=actor,
        action="remediation.approved" if approve else "remediation.rejected",
        reason=reason,
    )
    if not remediation.requested_by.startswith(SYSTEM_ACTOR_PREFIX):
        queue_notification(
            session,
            actor=actor,
            dedupe_key=f"remediation:{remediation.id}:decided",
            recipient=remediation.requested_by,
            template="remediation_decided",
            context={"remediation_id": remediation.id},
            identity_id=remediation.identity_id,
        )
    return remediation


def retry(
    session: Session, remediation: Remediation, *, actor: Actor, settings: Settings
) -> Remediation:
    """Queue a failed revocation again, with a fresh attempt count."""
    require_security_admin(settings, actor, "retry remediations")
    if remediation.status is not S.NEEDS_HUMAN:
        raise ConflictError(
            f"remediation {remediation.id} is {remediation.status.value}; only one "
            "that needs a human can be retried"
        )
    before = remediation.status
    remediation.status = S.PENDING
    remediation.attempts = 0
    remediation.next_attempt_at = utcnow()
    remediation.locked_by = None
    remediation.locked_until = None
    if remediation.kind is RemediationKind.REVOKE:
        identity = _identity(session, remediation)
        if identity.state is IdentityState.REVOCATION_FAILED:
            transition(
                session,
                identity,
                IdentityState.REVOCATION_PENDING,
                actor=actor,
                action="remediation.retried",
                reason=f"remediation {remediation.id} retried",
            )
    _record(session, remediation, before, actor=actor, action="remediation.retried")
    return remediation


def cancel(
    session: Session,
    remediation: Remediation,
    *,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> Remediation:
    """Cancel a remediation that has not finished; the identity keeps its access."""
    require_security_admin(settings, actor, "cancel remediations")
    if remediation.status in FINISHED or remediation.status is S.IN_PROGRESS:
        raise ConflictError(
            f"remediation {remediation.id} is {remediation.status.value} and cannot "
            "be cancelled"
        )
    if remediation.status is S.STAGED:
        raise ConflictError(
            f"remediation {remediation.id} has disabled the credential; undo it instead"
        )
    before = remediation.status
    remediation.status = S.CANCELLED
    remediation.completed_at = utcnow()
    if remediation.identity_id is not None and remediation.kind in (
        RemediationKind.REVOKE,
        RemediationKind.SCOPE_REDUCTION,
    ):
        identity = _identity(session, remediation)
        target = initial_owner_state(identity)
        if identity.state is not target:
            transition(
                session,
                identity,
                target,
                actor=actor,
                action="remediation.cancelled",
                reason=reason or f"remediation {remediation.id} cancelled",
            )
    _record(
        session,
        remediation,
        before,
        actor=actor,
        action="remediation.cancelled",
        reason=reason,
    )
    return remediation


def confirm(
    session: Session,
    remediation: Remediation,
    *,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> Remediation:
    """Confirm work done outside Steward: a manual revocation or a scope reduction.

    A confirmed revocation marks the identity revoked; a confirmed scope
    reduction certifies the identity for one more cycle. The owner, a backup
    owner or a security admin may confirm, and so may Steward's own jobs
    (system actors), such as the Jira sync when the ticket reached a done
    status. The CLI and the bot only create person actors.
    """
    if remediation.kind not in CONFIRMABLE_KINDS:
        raise ConflictError(
            f"remediation {remediation.id} is a {remediation.kind.value} row; only "
            "revocations and scope reductions can be confirmed"
        )
    identity = _identity(session, remediation)
    if actor.kind != "system" and not may_act_for(settings, actor, identity):
        raise PermissionDeniedError(
            f"{actor.name} may not confirm remediation {remediation.id}: only the "
            "owner, a backup owner or a security admin may"
        )
    waiting = {S.OPEN, S.NEEDS_HUMAN}
    if remediation.status not in waiting:
        raise ConflictError(
            f"remediation {remediation.id} is {remediation.status.value}; there is "
            "nothing to confirm"
        )
    before = remediation.status
    remediation.status = S.SUCCEEDED
    remediation.completed_at = utcnow()
    remediation.outcome = reason or f"confirmed by {actor.name}"
    if remediation.kind is RemediationKind.SCOPE_REDUCTION:
        certify(
            session,
            identity,
            actor=actor,
            settings=settings,
            reason=f"scope reduced (remediation {remediation.id})",
        )
    else:
        transition(
            session,
            identity,
            IdentityState.REVOKED,
            actor=actor,
            action="remediation.confirmed",
            reason=remediation.outcome,
        )
    _record(
        session,
        remediation,
        before,
        actor=actor,
        action="remediation.confirmed",
        reason=reason,
    )
    return remediation


def is_paused(session: Session) -> bool:
    """Return whether the emergency stop pauses all remediation."""
    switch = session.get(Switch, PAUSE_SWITCH)
    return switch is not None and switch.enabled


def set_paused(
    session: Session,
    paused: bool,
    *,
    actor: Actor,
    settings: Settings,
    reason: str = "",
) -> bool:
    """Pull or release the emergency stop; return False when nothing changed."""
    require_security_admin(settings, actor, "pause or resume remediation")
    switch = session.get(Switch, PAUSE_SWITCH)
    if switch is None:
        switch = Switch(name=PAUSE_SWITCH, enabled=False, changed_by=actor.name)
        session.add(switch)
    if switch.enabled == paused:
        return False
    switch.enabled = paused
    switch.changed_by = actor.name
    switch.changed_at = utcnow()
    switch.reason = reason
    record(
        session,
        actor=actor,
        action="remediation.paused" if paused else "remediation.resumed",
        object_type="switch",
        object_id=PAUSE_SWITCH,
        before_state="off" if paused else "on",
        after_state="on" if paused else "off",
        reason=reason,
    )
    return True


def request_undo(
    session: Session, remediation: Remediation, *, actor: Actor, settings: Settings
) -> Remediation:
    """Ask the worker to re-enable a credential disabled by a staged revocation."""
    require_security_admin(settings, actor, "undo revocations")
    if remediation.status is not S.STAGED or remediation.stage != "disabled":
        raise ConflictError(
            f"remediation {remediation.id} is {remediation.status.value}; only a "
            "credential disabled and not yet deleted can be restored"
        )
    before = remediation.status
    remediation.status = S.PENDING
    remediation.stage = "undo_requested"
    remediation.next_attempt_at = utcnow()
    _record(
        session, remediation, before, actor=actor, action="remediation.undo_requested"
    )
    return remediation
