"""Helpers of every button listener: the click, the clicker, the message edit.

A listener commits its change, then calls `ack()`, then edits the clicked
message with `refresh_clicked`. The edit re-renders the posted page from the
database (see `RefreshRequest`), outside any database transaction, and a
failure to edit is logged but never reported as a failed decision, because
the decision is already committed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from slack_bolt import Respond
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.context import Bot
from bot.errors import UsageError
from bot.messages import Page, RefreshRequest, refresher_for
from governance.audit.service import Actor
from governance.delivery.models import SentMessage
from governance.ids import parse_database_id
from governance.person.models import Person

logger = logging.getLogger(__name__)

# Ids in one button value; "Certify all" lists one page of reviews.
MAX_IDS = 50


@dataclass(frozen=True)
class Click:
    """One click on a button in a message: who, which value, and where."""

    user_id: str
    value: str
    channel: str | None
    message_ts: str | None
    trigger_id: str | None
    message_blocks: list[dict[str, Any]]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Click:
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        message = body.get("message") or {}
        return cls(
            user_id=str(body["user"]["id"]),
            value=str(action.get("value") or ""),
            channel=container.get("channel_id")
            or (body.get("channel") or {}).get("id"),
            message_ts=container.get("message_ts") or message.get("ts"),
            trigger_id=body.get("trigger_id"),
            message_blocks=list(message.get("blocks") or []),
        )


def parse_ids(value: str) -> list[int]:
    """Return the ids in a button value ("12" or "12,13").

    Raises UsageError for a malformed value.
    """
    parts = value.split(",")
    ids = [parse_database_id(part) for part in parts]
    valid = [item for item in ids if item is not None]
    if len(parts) > MAX_IDS or len(valid) != len(parts):
        raise UsageError(
            "This button carries no valid id. Ask for a fresh message and try again."
        )
    return valid


def parse_id(value: str) -> int:
    ids = parse_ids(value)
    if len(ids) != 1:
        raise UsageError("This button should carry exactly one id.")
    return ids[0]


def identify(bot: Bot, session: Session, user_id: str) -> tuple[Person, Actor]:
    """Return the person behind a Slack user and the actor they act as.

    Raises UnknownUserError for a Slack user who is not one of Steward's people.
    """
    person = bot.directory.person_for(session, user_id)
    return person, bot.directory.actor_for(session, user_id)


def tell(respond: Respond | None, text: str) -> None:
    """Send the clicker an ephemeral message, keeping the clicked message."""
    if respond is None:
        logger.warning("no response_url to tell the user: %s", text)
        return
    respond(text=text, response_type="ephemeral", replace_original=False)


def refresh_page(
    session: Session, sent: SentMessage, time_zone: str | None
) -> Page | None:
    """Re-render a posted page from the database; None when it has no refresher."""
    refresher = refresher_for(sent.template)
    if refresher is None:
        return None
    request = RefreshRequest(
        template=sent.template,
        key=sent.key,
        items=dict(sent.items),
        time_zone=time_zone,
    )
    return refresher(session, request)


def find_sent(session: Session, channel: str, message_ts: str) -> SentMessage | None:
    return session.scalars(
        sa.select(SentMessage).where(
            SentMessage.channel == channel, SentMessage.message_ref == message_ts
        )
    ).one_or_none()


def update_message(bot: Bot, channel: str, message_ts: str, page: Page) -> None:
    """Replace a posted message's text and blocks with `page`."""
    bot.client.chat_update(
        channel=channel, ts=message_ts, text=page.text, blocks=page.blocks
    )


def after_ack(description: str, work: Callable[[], None]) -> None:
    """Run work that follows a committed change, logging any failure instead."""
    try:
        work()
    except SlackApiError as error:
        logger.warning(
            "%s failed after the change was committed: %s",
            description,
            error.response.get("error"),
        )
    except Exception:
        logger.exception("%s failed after the change was committed", description)


def refresh_clicked(
    bot: Bot,
    click: Click,
    time_zone: str | None,
    fallback: Callable[[Session, Click], Page | None] | None = None,
) -> None:
    """Edit the clicked message in place to show the current state.

    The page is found by its `sent_message` row. A message with no such row
    (posted before it could be recorded) is rebuilt by `fallback` from what
    the click carries, when one is given.
    """
    after_ack(
        f"refreshing message {click.message_ts} in {click.channel}",
        functools.partial(_refresh_clicked, bot, click, time_zone, fallback),
    )


def _refresh_clicked(
    bot: Bot,
    click: Click,
    time_zone: str | None,
    fallback: Callable[[Session, Click], Page | None] | None,
) -> None:
    channel, message_ts = click.channel, click.message_ts
    if channel is None or message_ts is None:
        return
    with bot.steward.session() as session:
        sent = find_sent(session, channel, message_ts)
        if sent is not None:
            page = refresh_page(session, sent, time_zone)
        elif fallback is not None:
            page = fallback(session, click)
        else:
            logger.info("no record of message %s in %s to refresh", message_ts, channel)
            page = None
    if page is not None:
        update_message(bot, channel, message_ts, page)


def refresh_sent(bot: Bot, sent_ids: list[int], time_zone: str | None) -> None:
    """Re-render and edit the posted messages with these `sent_message` ids."""
    updates: list[tuple[str, str, Page]] = []
    with bot.steward.session() as session:
        for sent in session.scalars(
            sa.select(SentMessage).where(SentMessage.id.in_(sent_ids))
        ):
            page = refresh_page(session, sent, time_zone)
            if page is not None:
                updates.append((sent.channel, sent.message_ref, page))
    for channel, message_ts, page in updates:
        after_ack(
            f"updating message {message_ts} in {channel}",
            functools.partial(update_message, bot, channel, message_ts, page),
        )
