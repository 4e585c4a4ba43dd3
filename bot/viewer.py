"""The person behind a Slack request: their actor, admin flag and time zone."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.context import Bot
from governance.audit.service import Actor
from governance.authz import is_security_admin
from governance.person.models import Person

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viewer:
    """An imported person using the bot, with the actor the core records."""

    user_id: str
    actor: Actor
    person: Person
    is_admin: bool
    # IANA zone for showing times; None shows them in UTC.
    time_zone: str | None


def viewer_for(bot: Bot, session: Session, user_id: str) -> Viewer:
    """Return the viewer for a Slack user.

    Raises UnknownUserError when the user is not an imported person. A person
    linked before their time zone was known gets it from `users.info` once.
    """
    actor = bot.directory.actor_for(session, user_id)
    person = bot.directory.person_for(session, user_id)
    if person.time_zone is None:
        _fill_time_zone(bot, person, user_id)
    return Viewer(
        user_id=user_id,
        actor=actor,
        person=person,
        is_admin=is_security_admin(bot.settings, actor),
        time_zone=person.time_zone,
    )


def _fill_time_zone(bot: Bot, person: Person, user_id: str) -> None:
    try:
        user = bot.directory.user_info(user_id)
    except SlackApiError as error:
        # Times are shown in UTC then; the next request tries again.
        logger.warning(
            "reading Slack user %s for the time zone failed: %s",
            user_id,
            error.response.get("error"),
        )
        return
    if user.tz:
        person.time_zone = user.tz
