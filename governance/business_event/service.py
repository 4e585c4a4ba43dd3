"""Deprovisioning on business events: project closed, vendor offboarded,
application decommissioned.

An event closes its entity and queues the revocation of every live identity
linked to it, once: the sender's event id is unique, so a replay returns the
first outcome and changes nothing. An event with a new id for an entity that
is already closed is recorded as already closed and queues nothing, so a
second ticket for one closure does not ask the owners again. An identity
still linked to another active entity is kept and its owner is asked to
decide. An event that would revoke more than
`guards.lifecycle_approval_threshold` identities, or any privileged one,
waits for a security admin, who is asked once for the whole event with an
`event_approval` notification.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from governance.audit.service import Actor, record
from governance.authz import require_security_admin
from governance.business_entity.models import BusinessEntity, EntityStatus
from governance.business_event.models import BusinessEvent, EventStatus, EventType
from governance.clock import utcnow
from governance.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from governance.identity.models import Identity, RiskTier, identity_entity_link
from governance.lifecycle import REVOCABLE_STATES, IdentityState, transition
from governance.ownership.rules import initial_owner_state
from governance.remediation.models import Remediation, RemediationStatus
from governance.remediation.service import queue_notification, queue_revocation
from governance.settings import Settings

logger = logging.getLogger(__name__)

# The dedupe keys of an event's outbox rows (at most 200 characters) add up
# to 29 characters to the event id: "event:", ":", an identity id of up to 12
# digits and ":ask-owner".
MAX_EVENT_ID_LENGTH = 160


@dataclass(frozen=True)
class EventOutcome:
    """The outcome of an event; `duplicate` is true for a replay of a known id."""

    event: BusinessEvent
    duplicate: bool

    @property
    def already_closed(self) -> bool:
        """Whether the entity was closed before this event, which queued nothing."""
        return ALREADY_CLOSED in self.event.details


# The key in an event's details that marks an event for a closed entity. Its
# value is the id of the event that closed the entity, or None when an import
# marked it closed.
ALREADY_CLOSED = "already_closed_by"


def parse_event_type(text: str) -> EventType:
    """Return the event type named by `text`, or raise InvalidInputError."""
    try:
        return EventType(text)
    except ValueError:
        known = ", ".join(member.value for member in EventType)
        raise InvalidInputError(
            f"unknown event type {text!r}; expected one of: {known}"
        ) from None


def _find_entity(session: Session, event_type: EventType, key: str) -> BusinessEntity:
    entity = session.scalars(
        sa.select(BusinessEntity).where(
            BusinessEntity.type == event_type.entity_type, BusinessEntity.key == key
        )
    ).one_or_none()
    if entity is None:
        raise NotFoundError(event_type.entity_type.value, key)
    return entity


def _closing_event_id(session: Session, entity: BusinessEntity) -> str | None:
    """Return the id of the first event for `entity`, which closed it."""
    return session.scalars(
        sa.select(BusinessEvent.event_id)
        .where(BusinessEvent.entity_id == entity.id)
        .order_by(BusinessEvent.id)
        .limit(1)
    ).first()


def _linked_identities(session: Session, entity: BusinessEntity) -> list[Identity]:
    linked = sa.select(identity_entity_link.c.identity_id).where(
        identity_entity_link.c.entity_id == entity.id
    )
    return list(
        session.scalars(
            sa.select(Identity)
            .where(Identity.id.in_(linked), Identity.state.in_(REVOCABLE_STATES))
            .options(selectinload(Identity.entities), selectinload(Identity.owner))
            .order_by(Identity.id)
        )
    )


def receive_event(
    session: Session,
    *,
    event_id: str,
    event_type: EventType,
    key: str,
    actor: Actor,
    settings: Settings,
    occurred_at: datetime | None = None,
) -> EventOutcome:
    """Apply a business event once; a replayed event id returns the first outcome.

    Raises NotFoundError, changing nothing, for an unknown entity, and
    ConflictError when a known event id arrives with a different type or key.
    """
    event_id = event_id.strip()
    if not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
        raise InvalidInputError(
            f"invalid event id: expected 1 to {MAX_EVENT_ID_LENGTH} characters"
        )
    existing = session.scalars(
        sa.select(BusinessEvent).where(BusinessEvent.event_id == event_id)
    ).one_or_none()
    if existing is not None:
        if existing.type is not event_type or existing.entity.key != key:
            raise ConflictError(
                f"event id {event_id!r} was already used for {existing.type.value} "
                f"{existing.entity.key!r}"
            )
        return EventOutcome(existing, duplicate=True)

    entity = _find_entity(session, event_type, key)
    # NOTE: two events with different ids for one entity that arrive at the
    # same moment can both find it active and both apply, because the entity
    # row is not locked.
    if entity.status is EntityStatus.CLOSED:
        return _record_already_closed(
            session,
            event_id=event_id,
            event_type=event_type,
            entity=entity,
            actor=actor,
            occurred_at=occurred_at,
        )
    identities = _linked_identities(session, entity)
    to_revoke: list[Identity] = []
    kept: list[Identity] = []
    for identity in identities:
        others = [
            other
            for other in identity.entities
            if other.id != entity.id and other.status is EntityStatus.ACTIVE
        ]
        (kept if others else to_revoke).append(identity)

    needs_approval = len(
        to_revoke
    ) > settings.guards.lifecycle_approval_threshold or any(
        identity.tier is RiskTier.PRIVILEGED for identity in to_revoke
    )
    event = BusinessEvent(
        event_id=event_id,
        type=event_type,
        entity_id=entity.id,
        status=EventStatus.AWAITING_APPROVAL if needs_approval else EventStatus.APPLIED,
        actor=actor.name,
        occurred_at=occurred_at or utcnow(),
        revoke_count=len(to_revoke),
        kept_count=len(kept),
    )
    session.add(event)
    session.flush()
    record(
        session,
        actor=actor,
        action="event.received",
        object_type="business_event",
        object_id=event_id,
        after_state=event.status.value,
        reason=f"{event_type.value} {key}",
        details={
            "entity": f"{entity.type.value}:{entity.key}",
            "revoke": len(to_revoke),
            "kept": len(kept),
        },
    )
    _close_entity(session, entity, actor=actor, event_id=event_id)

    reason = f"{event_type.value}: {entity.type.value} {entity.key}"
    for identity in to_revoke:
        queue_revocation(
            session,
            identity,
            actor=actor,
            action="lifecycle.deprovision",
            reason=reason,
            dedupe_key=f"event:{event_id}:{identity.id}",
            approval_required=needs_approval,
            payload={"event_id": event_id},
            ask_approval=False,
        )
    if needs_approval:
        queue_notification(
            session,
            actor=actor,
            dedupe_key=f"business_event:{event.id}:approval",
            recipient=None,
            template="event_approval",
            context={"event_id": event_id},
        )
    for identity in kept:
        _ask_owner(session, identity, entity, actor=actor, event_id=event_id)
    logger.info(
        "event %s (%s %s): %s identities to revoke, %s kept, %s",
        event_id,
        event_type.value,
        key,
        len(to_revoke),
        len(kept),
        event.status.value,
    )
    return EventOutcome(event, duplicate=False)


def _record_already_closed(
    session: Session,
    *,
    event_id: str,
    event_type: EventType,
    entity: BusinessEntity,
    actor: Actor,
    occurred_at: datetime | None,
) -> EventOutcome:
    # NOTE: an identity linked to the entity after it was closed is not
    # revoked by a later event for the entity either.
    closed_by = _closing_event_id(session, entity)
    event = BusinessEvent(
        event_id=event_id,
        type=event_type,
        entity_id=entity.id,
        status=EventStatus.APPLIED,
        actor=actor.name,
        occurred_at=occurred_at or utcnow(),
        revoke_count=0,
        kept_count=0,
        details={ALREADY_CLOSED: closed_by},
    )
    session.add(event)
    session.flush()
    record(
        session,
        actor=actor,
        action="event.received",
        object_type="business_event",
        object_id=event_id,
        after_state=event.status.value,
        reason=f"{event_type.value} {entity.key}: already closed",
        details={
            "entity": f"{entity.type.value}:{entity.key}",
            ALREADY_CLOSED: closed_by,
        },
    )
    logger.info(
        "event %s (%s %s): the entity was already closed by %s, so nothing was queued",
        event_id,
        event_type.value,
        entity.key,
        closed_by or "an import",
    )
    return EventOutcome(event, duplicate=False)


def _close_entity(
    session: Session, entity: BusinessEntity, *, actor: Actor, event_id: str
) -> None:
    if entity.status is EntityStatus.CLOSED:
        return
    entity.status = EntityStatus.CLOSED
    entity.closed_at = utcnow()
    record(
        session,
        actor=actor,
        action="entity.closed",
        object_type="business_entity",
        object_id=f"{entity.type.value}:{entity.key}",
        before_state=EntityStatus.ACTIVE.value,
        after_state=EntityStatus.CLOSED.value,
        reason=f"event {event_id}",
    )


def _ask_owner(
    session: Session,
    identity: Identity,
    entity: BusinessEntity,
    *,
    actor: Actor,
    event_id: str,
) -> None:
    still_active = sorted(
        f"{other.type.value}:{other.key}"
        for other in identity.entities
        if other.id != entity.id and other.status is EntityStatus.ACTIVE
    )
    record(
        session,
        actor=actor,
        action="lifecycle.kept_shared",
        object_type="identity",
        object_id=str(identity.id),
        before_state=identity.state.value,
        after_state=identity.state.value,
        reason=f"{entity.type.value} {entity.key} closed but still linked to "
        + ", ".join(still_active),
        details={"event_id": event_id, "still_linked": still_active},
    )
    queue_notification(
        session,
        actor=actor,
        dedupe_key=f"event:{event_id}:{identity.id}:ask-owner",
        recipient=identity.owner.email if identity.owner is not None else None,
        template="lifecycle_shared_identity",
        context={
            "identity_id": identity.id,
            "closed": f"{entity.type.value}:{entity.key}",
            "still_linked": still_active,
        },
        identity_id=identity.id,
    )


def find_event(session: Session, event_id: str) -> BusinessEvent:
    """Return the event by its sender's id; raise NotFoundError when unknown."""
    event = session.scalars(
        sa.select(BusinessEvent).where(BusinessEvent.event_id == event_id)
    ).one_or_none()
    if event is None:
        raise NotFoundError("event", event_id)
    return event


def lock_event(session: Session, event_row_id: int) -> BusinessEvent:
    """Return an event by its row id, locked for update, so decisions serialise.

    Raises NotFoundError when there is no such row.
    """
    event = session.scalars(
        sa.select(BusinessEvent)
        .where(BusinessEvent.id == event_row_id)
        .with_for_update()
    ).one_or_none()
    if event is None:
        raise NotFoundError("event", str(event_row_id))
    return event


def decide_event(
    session: Session,
    event: BusinessEvent,
    *,
    approve: bool,
    actor: Actor,
    settings: Settings,
) -> int:
    """Approve or reject an event's revocations; return how many were affected."""
    require_security_admin(settings, actor, "approve deprovisioning")
    if approve and event.actor == actor.name:
        raise PermissionDeniedError(
            f"{actor.name} may not approve event {event.event_id}, which they sent: "
            "another security admin must"
        )
    if event.status is not EventStatus.AWAITING_APPROVAL:
        raise ConflictError(
            f"event {event.event_id} is {event.status.value}, not awaiting approval"
        )
    remediations = session.scalars(
        sa.select(Remediation).where(
            Remediation.dedupe_key.like(
                f"event:{_escape_like(event.event_id)}:%", "\\"
            ),
            Remediation.status == RemediationStatus.AWAITING_APPROVAL,
        )
    ).all()
    now = utcnow()
    for remediation in remediations:
        identity = session.get_one(Identity, remediation.identity_id)
        remediation.approved_by = actor.name
        if approve:
            remediation.status = RemediationStatus.PENDING
            remediation.next_attempt_at = now
            transition(
                session,
                identity,
                IdentityState.REVOCATION_PENDING,
                actor=actor,
                action="remediation.approved",
                reason=f"event {event.event_id} approved",
            )
        else:
            remediation.status = RemediationStatus.REJECTED
            remediation.completed_at = now
            transition(
                session,
                identity,
                initial_owner_state(identity),
                actor=actor,
                action="remediation.rejected",
                reason=f"event {event.event_id} rejected",
            )
    before = event.status
    event.status = EventStatus.APPLIED if approve else EventStatus.REJECTED
    event.decided_by = actor.name
    event.decided_at = now
    record(
        session,
        actor=actor,
        action="event.approved" if approve else "event.rejected",
        object_type="business_event",
        object_id=event.event_id,
        before_state=before.value,
        after_state=event.status.value,
        details={"remediations": len(remediations)},
    )
    return len(remediations)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
