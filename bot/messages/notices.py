"""Renderers of the notifications that only inform: failures, audit heads, expiries.

Importing this module registers them; `bot.messages.catalog` imports it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot import blocks
from bot.messages import Destination, Page, RenderRequest, renders
from governance.campaign.models import Review
from governance.identity.models import Identity
from governance.remediation.notifications import Template


def _identity_line(session: Session, identity_id: Any) -> str:
    identity = session.get(Identity, identity_id) if identity_id else None
    if identity is None:
        return f"identity {identity_id}"
    name = blocks.escape(identity.name)
    source = blocks.escape(identity.source)
    return f"*{name}* ({identity.kind}, {source}, id {identity.id})"


def _single(text: str, *details: str) -> list[Page]:
    body: list[blocks.Block] = [blocks.section(text)]
    if details:
        body.append(blocks.context(*details))
    return [Page(text=text, blocks=body)]


def render_fallback(request: RenderRequest) -> list[Page]:
    """Render a template that has no renderer as its name and ids."""
    pairs = ", ".join(
        f"{key} {value}"
        for key, value in sorted(request.context.items())
        if isinstance(value, int | str)
    )
    return _single(f"Steward notification: {request.template}", blocks.escape(pairs))


@renders(Template.DELIVERY_FAILED, Destination.SECURITY)
def render_delivery_failed(session: Session, request: RenderRequest) -> list[Page]:
    context = request.context
    recipient = context.get("recipient") or "the security channel"
    return _single(
        f":warning: A {context.get('template', 'notification')} message to "
        f"{blocks.escape(str(recipient))} could not be delivered: "
        f"{blocks.escape(str(context.get('error', 'unknown error')))}",
        f"Outbox item {context.get('remediation_id')} stays undelivered until it is "
        "retried: `steward remediation retry ID` after fixing the cause.",
    )


@renders(Template.TICKET_FAILED, Destination.SECURITY)
def render_ticket_failed(session: Session, request: RenderRequest) -> list[Page]:
    context = request.context
    return _single(
        f":warning: The ticket for remediation {context.get('remediation_id')} could "
        f"not be created: {blocks.escape(str(context.get('error', 'unknown error')))}",
        "The decision and the revocation stand; the ticket is retried. "
        "Check the Jira settings with `steward jira check`.",
    )


@renders(Template.AUDIT_HEAD, Destination.SECURITY)
def render_audit_head(session: Session, request: RenderRequest) -> list[Page]:
    context = request.context
    return _single(
        f"Audit trail head at {context.get('at')}: sequence *{context.get('seq')}*, "
        f"hash `{context.get('hash')}`",
        "Keep these messages: `steward audit verify --expect-head SEQ:HASH` detects "
        "a trail truncated or rewritten after this point.",
    )


@renders(Template.REVIEW_EXPIRED, Destination.RECIPIENT)
def render_review_expired(session: Session, request: RenderRequest) -> list[Page]:
    review = session.get(Review, request.context.get("review_id"))
    what = (
        _identity_line(session, review.identity_id)
        if review is not None
        else f"review {request.context.get('review_id')}"
    )
    return _single(
        f"The certification of {what} expired unanswered when campaign "
        f"{request.context.get('campaign_id')} closed. It is still due and is not "
        "treated as certified.",
    )


@renders(Template.LIFECYCLE_SHARED_IDENTITY, Destination.RECIPIENT)
def render_shared_identity(session: Session, request: RenderRequest) -> list[Page]:
    context = request.context
    linked = ", ".join(str(item) for item in context.get("still_linked") or [])
    return _single(
        f"{blocks.escape(str(context.get('closed')))} was closed, but "
        f"{_identity_line(session, context.get('identity_id'))} is still linked to "
        f"{blocks.escape(linked)}, so it was kept. Revoke it or unlink it if it is "
        "no longer needed.",
    )
