"""Approvals for the security team: privileged revocations and large events.

Each request shows what would be revoked and why, with Approve and Reject
buttons whose value is the remediation id or the event's row id. Once
decided, the message shows who decided what and when instead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.blocks import Block, actions, button, confirm_dialog, context, cut, section
from bot.messages import (
    Destination,
    Page,
    RefreshRequest,
    RenderRequest,
    refreshes,
    renders,
)
from bot.messages.parts import (
    CHANNEL,
    Reader,
    identity_evidence,
    identity_title,
    load_identities,
    name_for_email,
    owner_line,
    people_by_email,
    reader_for,
    text,
)
from governance.audit.models import AuditEvent
from governance.business_event.models import BusinessEvent, EventStatus
from governance.business_event.service import find_event
from governance.identity.models import RiskTier
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.notifications import Template

DECISION_ACTIONS = ("remediation.approved", "remediation.rejected")
# Identities named in an event approval; the rest are counted.
SHOWN_EVENT_IDENTITIES = 15


def _decision_buttons(
    approve: Action, reject: Action, value: str, confirm_text: str
) -> Block:
    return actions(
        [
            button(
                "Approve",
                action_id=approve,
                value=value,
                style="danger",
                confirm=confirm_dialog(
                    "Approve the revocation?", confirm_text, "Approve"
                ),
            ),
            button("Reject", action_id=reject, value=value),
        ],
        block_id=f"{approve.value}:{value}",
    )


def _decided_at(session: Session, remediation: Remediation) -> datetime | None:
    """Return when a security admin approved or rejected the remediation."""
    return session.scalar(
        sa.select(AuditEvent.occurred_at)
        .where(
            AuditEvent.object_type == "remediation",
            AuditEvent.object_id == str(remediation.id),
            AuditEvent.action.in_(DECISION_ACTIONS),
        )
        .order_by(AuditEvent.seq)
        .limit(1)
    )


def _remediation_outcome(
    session: Session, remediation: Remediation, reader: Reader
) -> str:
    people = people_by_email(session, [remediation.approved_by])
    who = name_for_email(people, remediation.approved_by)
    when = reader.time(_decided_at(session, remediation))
    if remediation.status is RemediationStatus.REJECTED:
        return f"*Rejected* by {who} at {when}"
    if remediation.approved_by is None:
        return f"The revocation is {remediation.status.value.replace('_', ' ')}"
    return (
        f"*Approved* by {who} at {when}; the revocation is "
        f"{remediation.status.value.replace('_', ' ')}"
    )


def build_revocation_approval(session: Session, remediation_id: int, key: str) -> Page:
    """Render one revocation waiting for approval, or its outcome."""
    remediation = session.get_one(Remediation, remediation_id)
    identity_id = remediation.identity_id
    identities = load_identities(session, [identity_id] if identity_id else [])
    identity = identities.get(identity_id) if identity_id else None
    people = people_by_email(session, [remediation.requested_by])
    opening = (
        "*Revocation waiting for approval*\n"
        f"Requested by {name_for_email(people, remediation.requested_by)} at "
        f"{CHANNEL.time(remediation.created_at)}: {text(remediation.reason, 300)}"
    )
    blocks = [section(opening, block_id=f"remediation:{remediation.id}")]
    if identity is not None:
        blocks.append(
            section(
                f"{identity_title(identity)}\n{identity_evidence(identity, CHANNEL)}\n"
                f"{owner_line(identity)}"
            )
        )
    if remediation.status is RemediationStatus.AWAITING_APPROVAL:
        blocks.append(
            _decision_buttons(
                Action.REVOCATION_APPROVE,
                Action.REVOCATION_REJECT,
                str(remediation.id),
                "Steward revokes the credential at its source once approved.",
            )
        )
    else:
        blocks.append(context(_remediation_outcome(session, remediation, CHANNEL)))
    name = identity.name if identity is not None else f"remediation {remediation.id}"
    return Page(
        text=f"Revocation of {text(name, 150)} waits for approval",
        blocks=blocks,
        key=key,
        items={"remediation_id": remediation.id},
    )


@renders(Template.REVOCATION_APPROVAL, Destination.SECURITY)
def render_revocation_approval(session: Session, request: RenderRequest) -> list[Page]:
    remediation_id = int(request.context["remediation_id"])
    key = f"revocation_approval:{remediation_id}"
    return [build_revocation_approval(session, remediation_id, key)]


@refreshes(Template.REVOCATION_APPROVAL)
def refresh_revocation_approval(
    session: Session, request: RefreshRequest
) -> Page | None:
    remediation_id = int(request.items["remediation_id"])
    return build_revocation_approval(session, remediation_id, request.key)


@renders(Template.REMEDIATION_DECIDED, Destination.RECIPIENT)
def render_remediation_decided(session: Session, request: RenderRequest) -> list[Page]:
    """Tell the requester of a revocation whether a security admin approved it."""
    remediation = session.get_one(Remediation, int(request.context["remediation_id"]))
    if remediation.status is RemediationStatus.AWAITING_APPROVAL:
        return []
    identity_id = remediation.identity_id
    identities = load_identities(session, [identity_id] if identity_id else [])
    name = (
        identity_title(identities[identity_id])
        if identity_id in identities
        else f"remediation {remediation.id}"
    )
    reader = reader_for(request.recipient, request.time_zone)
    opening = (
        f"The revocation of {name} that you requested was decided.\n"
        f"{_remediation_outcome(session, remediation, reader)}"
    )
    verb = (
        "rejected" if remediation.status is RemediationStatus.REJECTED else "approved"
    )
    return [
        Page(
            text=cut(f"Your revocation request was {verb}", 300),
            blocks=[section(opening)],
        )
    ]


def _event_revocations(session: Session, event: BusinessEvent) -> list[Remediation]:
    prefix = f"event:{event.event_id}:"
    return list(
        session.scalars(
            sa.select(Remediation)
            .where(
                Remediation.dedupe_key.startswith(prefix, autoescape=True),
                Remediation.kind == RemediationKind.REVOKE,
            )
            .order_by(Remediation.id)
        )
    )


def _event_identities(session: Session, revocations: list[Remediation]) -> str:
    ids = [row.identity_id for row in revocations if row.identity_id is not None]
    identities = load_identities(session, ids[:SHOWN_EVENT_IDENTITIES])
    lines = [
        f"• {text(identity.name, 120)} ({text(identity.source, 60)}, "
        f"{identity.tier.value})"
        for identity in identities.values()
    ]
    more = len(ids) - len(identities)
    if more > 0:
        lines.append(f"and {more} more")
    return "\n".join(lines) or "none"


def build_event_approval(session: Session, event_row_id: int, key: str) -> Page:
    """Render a deprovisioning event waiting for approval, or its outcome."""
    event = session.get_one(BusinessEvent, event_row_id)
    entity = event.entity
    revocations = _event_revocations(session, event)
    privileged = sum(
        1
        for identity in load_identities(
            session, [row.identity_id for row in revocations if row.identity_id]
        ).values()
        if identity.tier is RiskTier.PRIVILEGED
    )
    opening = (
        f"*{event.type.value}: {entity.type.value} {text(entity.key, 100)}*"
        + (f" ({text(entity.name, 100)})" if entity.name else "")
        + f"\nEvent {text(event.event_id, 100)} from {text(event.actor, 100)} at "
        f"{CHANNEL.time(event.received_at)} would revoke {event.revoke_count} "
        f"identities ({privileged} privileged); {event.kept_count} shared ones are "
        "kept and their owners asked."
    )
    blocks = [
        section(opening, block_id=f"event:{event.id}"),
        section(_event_identities(session, revocations)),
    ]
    if event.status is EventStatus.AWAITING_APPROVAL:
        blocks.append(
            _decision_buttons(
                Action.EVENT_APPROVE,
                Action.EVENT_REJECT,
                str(event.id),
                f"Steward revokes all {event.revoke_count} identities at their "
                "sources once approved.",
            )
        )
    else:
        people = people_by_email(session, [event.decided_by])
        outcome = "Approved" if event.status is EventStatus.APPLIED else "Rejected"
        blocks.append(
            context(
                f"*{outcome}* by {name_for_email(people, event.decided_by)} at "
                f"{CHANNEL.time(event.decided_at)}"
            )
        )
    return Page(
        text=f"Deprovisioning of {text(entity.key, 150)} waits for approval",
        blocks=blocks,
        key=key,
        items={"event_id": event.id},
    )


@renders(Template.EVENT_APPROVAL, Destination.SECURITY)
def render_event_approval(session: Session, request: RenderRequest) -> list[Page]:
    """Ask the security team to approve one event's revocations at once."""
    event = find_event(session, str(request.context["event_id"]))
    return [build_event_approval(session, event.id, f"event_approval:{event.id}")]


@refreshes(Template.EVENT_APPROVAL)
def refresh_event_approval(session: Session, request: RefreshRequest) -> Page | None:
    return build_event_approval(session, int(request.items["event_id"]), request.key)
