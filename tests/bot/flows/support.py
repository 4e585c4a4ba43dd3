"""Helpers for the flow tests: delivering notifications, clicking, reading buttons.

`deliver` replaces the delivery worker in these tests: it renders each pending
notification with its registered renderer, posts the pages to the Web API
stand-in through the bot's real client, and records each page as a
`sent_message` row, as the worker does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import bot.messages.catalog  # noqa: F401 - registers the renderers
from bot.blocks import check_blocks
from bot.context import Bot
from bot.local_api import Message, SlackApi
from bot.messages import Destination, RenderRequest, spec_for
from bot.payloads import FORM, block_action_body, signed, view_submission_body
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.campaign.models import Review
from governance.campaign.service import start_campaign
from governance.clock import utcnow
from governance.delivery.models import SentMessage
from governance.identity.models import RiskTier
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.settings import Settings
from tests.bot.conftest import SIGNING_SECRET, Response, RunningServer
from tests.factories import make_identity


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that can wait until every task submitted so far is done."""

    def __init__(self) -> None:
        super().__init__(max_workers=8, thread_name_prefix="listener")
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(  # type: ignore[override]
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._futures.append(future)
        return future

    def settle(self, timeout: float = 60) -> None:
        with self._lock:
            futures = list(self._futures)
        _, pending = wait(futures, timeout=timeout)
        assert not pending, f"{len(pending)} listener tasks still running"


def deliver(bot: Bot, slack_api: SlackApi) -> list[Message]:
    """Post every pending notification; return the messages posted."""
    before = len(slack_api.messages)
    with bot.steward.session() as session:
        rows = session.scalars(
            sa.select(Remediation)
            .where(
                Remediation.kind == RemediationKind.NOTIFY,
                Remediation.status == RemediationStatus.PENDING,
            )
            .order_by(Remediation.id)
        ).all()
        for row in rows:
            _deliver_one(bot, session, row)
    return list(slack_api.messages[before:])


def _deliver_one(bot: Bot, session: Session, row: Remediation) -> None:
    template = str(row.payload["template"])
    spec = spec_for(template)
    if spec is None:
        return
    email = row.payload.get("recipient")
    recipient = (
        session.scalars(sa.select(Person).where(Person.email == email)).one_or_none()
        if email
        else None
    )
    request = RenderRequest(
        remediation_id=row.id,
        template=template,
        context=dict(row.payload.get("context") or {}),
        recipient=recipient,
        time_zone=recipient.time_zone if recipient is not None else None,
    )
    slack = bot.settings.slack
    if spec.destination is Destination.ORPHANS:
        channel = slack.orphan_channel
    elif spec.destination is Destination.RECIPIENT and recipient is not None:
        channel = recipient.slack_user_id
    else:
        channel = slack.security_channel
    for page in spec.render(session, request):
        check_blocks(page.blocks)
        answer = bot.client.chat_postMessage(
            channel=str(channel), text=page.text, blocks=page.blocks
        )
        if page.key is not None:
            session.add(
                SentMessage(
                    key=page.key,
                    template=template,
                    channel=str(answer["channel"]),
                    message_ref=str(answer["ts"]),
                    items=page.items,
                    remediation_id=row.id,
                )
            )
    row.status = RemediationStatus.SUCCEEDED


def click(
    server: RunningServer,
    slack_api: SlackApi,
    message: Message,
    *,
    user: str,
    action: str,
    value: str,
    retry_num: int | None = None,
) -> Response:
    """Click a button of a posted message as `user`, over signed HTTP."""
    body = block_action_body(
        user_id=user,
        action_id=action,
        value=value,
        channel_id=message.channel,
        message_ts=message.ts,
        message={"type": "message", "ts": message.ts, "blocks": message.blocks},
        response_url=slack_api.response_url,
    )
    return server.send(signed(SIGNING_SECRET, body, FORM, retry_num=retry_num))


def submit_view(
    server: RunningServer,
    *,
    user: str,
    callback_id: str,
    private_metadata: str,
    values: dict[str, Any],
) -> Response:
    body = view_submission_body(
        user_id=user,
        callback_id=callback_id,
        private_metadata=private_metadata,
        values=values,
    )
    return server.send(signed(SIGNING_SECRET, body, FORM))


def elements(message: Message) -> list[dict[str, Any]]:
    """Return every interactive element of a message, in order."""
    found: list[dict[str, Any]] = []
    for block in message.blocks:
        found.extend(block.get("elements") or [])
        if block.get("accessory"):
            found.append(block["accessory"])
    return [element for element in found if element.get("type") == "button"]


def button(message: Message, action: str, value: str | None = None) -> dict[str, Any]:
    """Return the one button with this action id (and value, when given)."""
    matches = [
        element
        for element in elements(message)
        if element["action_id"] == action
        and (value is None or element["value"] == value)
    ]
    assert len(matches) == 1, [
        e["action_id"] + ":" + e["value"] for e in elements(message)
    ]
    return matches[0]


def message_text(message: Message) -> str:
    """Return every text of a message's blocks, joined, for assertions."""
    parts: list[str] = [message.text]
    for block in message.blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(text.get("text", ""))
        for item in [*(block.get("fields") or []), *(block.get("elements") or [])]:
            if item.get("type") in {"mrkdwn", "plain_text"}:
                parts.append(item.get("text", ""))
    return "\n".join(parts)


def audit_count(session: Session, action: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(AuditEvent)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    return int(session.scalar(statement) or 0)


ADMIN = Actor.person("security@example.com")


def open_campaign(
    session: Session,
    settings: Settings,
    owner: Person,
    *,
    standard: int = 2,
    privileged: int = 1,
    backup: Person | None = None,
    **fields: Any,
) -> list[int]:
    """Open a campaign over new identities of `owner`; return the review ids.

    Privileged identities come first. The caller's session is committed.
    """
    due = utcnow() - timedelta(days=1)
    tiers = [RiskTier.PRIVILEGED] * privileged + [RiskTier.STANDARD] * standard
    for tier in tiers:
        identity = make_identity(
            session, owner=owner, tier=tier, review_due_at=due, **fields
        )
        if backup is not None:
            identity.backup_owners.append(backup)
    session.commit()
    campaign = start_campaign(session, actor=ADMIN, settings=settings)
    session.commit()
    return list(
        session.scalars(
            sa.select(Review.id)
            .where(Review.campaign_id == campaign.id)
            .order_by(Review.id)
        )
    )
