"""Scope reductions: the owner's reminder of the deadline, with a confirm button.

The owner reduces the identity's access at its source, then clicks "Scope
reduced" (value: the remediation id), which certifies the identity for one
more cycle. Once confirmed, the message shows when instead of the button.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.blocks import actions, context, cut, section
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
    owner_line,
    reader_for,
    text,
)
from bot.messages.reviews import scope_reduced_button
from governance.clock import utcnow
from governance.remediation.models import Remediation, RemediationStatus
from governance.remediation.notifications import Template


def build_scope_reduction(
    session: Session, template: Template, remediation_id: int, key: str, reader: Reader
) -> Page:
    """Render a scope reduction's deadline and the button that confirms it."""
    remediation = session.get_one(Remediation, remediation_id)
    identity_id = remediation.identity_id
    identities = load_identities(session, [identity_id] if identity_id else [])
    identity = identities.get(identity_id) if identity_id else None
    name = identity_title(identity) if identity is not None else "an identity"
    overdue = remediation.deadline is not None and remediation.deadline < utcnow()
    if template is Template.SCOPE_REDUCTION_OVERDUE or overdue:
        opening = (
            f"*The scope reduction of {name} is overdue*: it was due by "
            f"{reader.date(remediation.deadline)}."
        )
    else:
        opening = (
            f"*Reduce the scope of {name}* by {reader.date(remediation.deadline)}."
        )
    opening += f"\nWhy: {text(remediation.reason, 300)}"
    blocks = [section(opening, block_id=f"reduction:{remediation.id}")]
    if identity is not None:
        blocks.append(
            section(f"{identity_evidence(identity, reader)}\n{owner_line(identity)}")
        )
    if remediation.status in {RemediationStatus.OPEN, RemediationStatus.NEEDS_HUMAN}:
        blocks.append(
            context("Cut its access to what it needs at its source, then confirm here.")
        )
        blocks.append(
            actions(
                [scope_reduced_button(remediation)],
                block_id=f"reduction:{remediation.id}:confirm",
            )
        )
    else:
        blocks.append(context(_outcome(session, remediation, reader)))
    return Page(
        text=cut("A scope reduction waits for your confirmation", 300),
        blocks=blocks,
        key=key,
        items={"remediation_id": remediation.id, "shared": reader.shared},
    )


def _outcome(session: Session, remediation: Remediation, reader: Reader) -> str:
    if remediation.status is RemediationStatus.SUCCEEDED:
        return (
            f"*Confirmed* at {reader.time(remediation.completed_at)}: "
            f"{text(remediation.outcome, 300)}"
        )
    return f"This scope reduction is {remediation.status.value.replace('_', ' ')}."


def _render(template: Template) -> None:
    @renders(template, Destination.RECIPIENT)
    def render(session: Session, request: RenderRequest) -> list[Page]:
        remediation_id = int(request.context["remediation_id"])
        key = f"{template.value}:{request.remediation_id}"
        reader = reader_for(request.recipient, request.time_zone)
        return [build_scope_reduction(session, template, remediation_id, key, reader)]

    @refreshes(template)
    def refresh(session: Session, request: RefreshRequest) -> Page | None:
        remediation_id = int(request.items["remediation_id"])
        shared = bool(request.items.get("shared"))
        reader = CHANNEL if shared else Reader(time_zone=request.time_zone)
        return build_scope_reduction(
            session, template, remediation_id, request.key, reader
        )


_render(Template.SCOPE_REDUCTION_DUE)
_render(Template.SCOPE_REDUCTION_OVERDUE)
