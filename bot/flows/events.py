"""Slack events that change governance: a deactivated Slack account.

When Slack reports a user as deleted (`user_change` with `user.deleted`),
the matching person is deactivated and the owner-departure rule applies:
each identity they owned passes to an active backup owner or becomes an
orphan, and their pending reviews are reassigned. A redelivered event finds
the person inactive already and changes nothing. Bolt acknowledges events
before the listener runs, so a failure here is logged, not returned to Slack.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, Respond
from sqlalchemy.orm import Session

from bot.context import Bot
from bot.errors import reply_to_errors
from governance.audit.service import Actor
from governance.errors import StewardError
from governance.ownership.service import deactivate_departed
from governance.person.models import Person

logger = logging.getLogger(__name__)

ACTOR = Actor.system("slack")


def person_for_user(session: Session, user: dict[str, Any]) -> Person | None:
    """Return the person behind a Slack user object, by user id, then by email."""
    person = session.scalars(
        sa.select(Person).where(Person.slack_user_id == str(user.get("id")))
    ).one_or_none()
    if person is not None:
        return person
    email = str((user.get("profile") or {}).get("email") or "").strip().lower()
    if not email:
        return None
    return session.scalars(sa.select(Person).where(Person.email == email)).one_or_none()


def apply_user_change(bot: Bot, user: dict[str, Any]) -> None:
    """Apply the departure rule to a deleted user; else keep their zone current."""
    with bot.steward.session() as session:
        person = person_for_user(session, user)
        if person is None:
            return
        if not user.get("deleted"):
            zone = user.get("tz")
            if zone and person.time_zone != zone:
                person.time_zone = str(zone)
            return
        result = deactivate_departed(
            session,
            person,
            actor=ACTOR,
            settings=bot.settings,
            reason=f"Slack account {user.get('id')} was deactivated",
        )
        if result is None:
            logger.info("departure of %s already applied", person.email)


def register(bot: Bot) -> None:
    """Register the `user_change` event listener on the bot."""

    @bot.bolt.event("user_change")
    @reply_to_errors
    def on_user_change(
        ack: Ack, respond: Respond | None, event: dict[str, Any]
    ) -> None:
        user = event.get("user")
        if not isinstance(user, dict):
            logger.warning("user_change event without a user object ignored")
            return
        try:
            apply_user_change(bot, user)
        except StewardError as error:
            logger.error(
                "user_change for Slack user %s not applied: %s", user.get("id"), error
            )
