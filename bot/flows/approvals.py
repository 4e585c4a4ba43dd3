"""Security admins' buttons: approve or reject revocations and events, and
owners' confirmation of a finished scope reduction.

The core checks who may act. Security admins approve, but never their own
requests, and the owner, a backup owner or an admin confirms. Each row is
locked while it is decided, so two admins clicking at once produce one
decision and the second gets the core's conflict message.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, Respond

from bot.actions import Action
from bot.context import Bot
from bot.errors import reply_to_errors
from bot.flows.clicks import Click, identify, parse_id, refresh_clicked, tell
from governance.business_event.service import decide_event, lock_event
from governance.remediation.operations import confirm, decide_approval, find_remediation


def register(bot: Bot) -> None:
    """Register the approval and confirmation buttons on the bot."""
    for action, approve in (
        (Action.REVOCATION_APPROVE, True),
        (Action.REVOCATION_REJECT, False),
    ):
        bot.bolt.action(action.value)(revocation_listener(bot, approve))
    for action, approve in ((Action.EVENT_APPROVE, True), (Action.EVENT_REJECT, False)):
        bot.bolt.action(action.value)(event_listener(bot, approve))

    @bot.bolt.action(Action.SCOPE_REDUCTION_CONFIRM.value)
    @reply_to_errors
    def confirm_reduction(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        remediation_id = parse_id(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            remediation = find_remediation(session, remediation_id)
            confirm(session, remediation, actor=actor, settings=bot.settings)
            time_zone = person.time_zone
        ack()
        tell(respond, "Thank you: the scope reduction is confirmed.")
        refresh_clicked(bot, click, time_zone)


def revocation_listener(bot: Bot, approve: bool) -> Any:
    """Return the listener of the Approve or Reject button of a revocation."""

    @reply_to_errors
    def decide(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        remediation_id = parse_id(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            remediation = find_remediation(session, remediation_id)
            decide_approval(
                session,
                remediation,
                approve=approve,
                actor=actor,
                settings=bot.settings,
            )
            time_zone = person.time_zone
        ack()
        refresh_clicked(bot, click, time_zone)

    return decide


def event_listener(bot: Bot, approve: bool) -> Any:
    """Return the listener of the Approve or Reject button of a business event."""

    @reply_to_errors
    def decide(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        event_row_id = parse_id(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            event = lock_event(session, event_row_id)
            count = decide_event(
                session, event, approve=approve, actor=actor, settings=bot.settings
            )
            time_zone = person.time_zone
        ack()
        verb = "queued" if approve else "rejected"
        tell(respond, f"{count} revocations {verb}.")
        refresh_clicked(bot, click, time_zone)

    return decide
