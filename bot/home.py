"""The App Home tab: published when the viewer opens it and on its buttons.

Publishing is idempotent (`views.publish` replaces the whole view), so a
redelivered `app_home_opened` event or a double click only publishes the same
view again.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, Respond

from bot.context import Bot
from bot.directory import UnknownUserError
from bot.errors import UsageError, reply_to_errors
from bot.home_view import HomeAction, home_view, unknown_person_view
from bot.nhi.replies import MAX_OFFSET
from bot.viewer import viewer_for

logger = logging.getLogger(__name__)


def register(bot: Bot) -> None:
    """Register the Home tab's listeners on the bot."""

    @bot.bolt.event("app_home_opened")
    @reply_to_errors
    def home_opened(ack: Ack, respond: Respond, event: dict[str, Any]) -> None:
        # The same event reports the Messages tab being opened.
        if event.get("tab") != "home":
            return
        publish_home(bot, str(event["user"]))

    for action_id in HomeAction:

        @bot.bolt.action(action_id.value)
        @reply_to_errors
        def home_button(
            ack: Ack, respond: Respond, body: dict[str, Any], action: dict[str, Any]
        ) -> None:
            ack()
            offset = _offset(str(action.get("value") or ""))
            publish_home(bot, str(body["user"]["id"]), offset=offset)


def _offset(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) > MAX_OFFSET:
        raise UsageError("This button is not one Steward made.")
    return int(value)


def publish_home(bot: Bot, user_id: str, *, offset: int = 0) -> None:
    """Build the viewer's Home view, commit, then publish it with `views.publish`."""
    with bot.steward.session() as session:
        try:
            viewer = viewer_for(bot, session, user_id)
        except UnknownUserError as error:
            view = unknown_person_view(str(error))
        else:
            view = home_view(session, viewer, offset=offset)
    bot.client.views_publish(user_id=user_id, view=view)
    logger.debug("published the Home view of Slack user %s", user_id)
