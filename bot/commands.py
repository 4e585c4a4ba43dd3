"""The /nhi slash command: parse it, check the sender, reply within 3 seconds.

Quick subcommands reply in the acknowledgement itself. Slow ones (searches
and listings that scan the inventory, the report, opening or closing a
campaign) acknowledge at once with "Working on it" and send the reply
through `respond`, because Slack shows the user an error for a command that
is not acknowledged within 3 seconds. Subcommands that change state or show
others' inventory are for security admins. Anyone else gets a refusal and
nothing changes. Every reply is ephemeral.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, Respond
from sqlalchemy.orm import Session

from bot.blocks import escape
from bot.context import Bot
from bot.directory import UnknownUserError
from bot.errors import UsageError, reply_to_errors
from bot.nhi import admin, identities, work
from bot.nhi.parsing import Invocation, Subcommand, parse
from bot.nhi.replies import (
    Action,
    Build,
    CommandContext,
    Reply,
    help_reply,
    plain_reply,
    read_page_value,
    refusal,
    usage_reply,
)
from bot.viewer import Viewer, viewer_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    """How the reply to one subcommand is built.

    `admin_action` completes "Only security admins may ..." for subcommands
    that only security admins may run; None lets every imported person run it.
    `snapshot` runs the unit of work at REPEATABLE READ on PostgreSQL, so that
    its queries read one snapshot while discovery writes.
    """

    build: Build
    slow: bool
    admin_action: str | None = None
    snapshot: bool = False


HANDLERS: dict[Subcommand, Handler] = {
    Subcommand.STATUS: Handler(identities.status, slow=False),
    Subcommand.WHOIS: Handler(identities.whois, slow=True),
    Subcommand.MINE: Handler(work.mine, slow=True),
    Subcommand.ORPHANS: Handler(
        work.orphans, slow=True, admin_action="list the orphans"
    ),
    Subcommand.CAMPAIGN_START: Handler(
        admin.campaign_start, slow=True, admin_action="start campaigns"
    ),
    Subcommand.CAMPAIGN_STATUS: Handler(
        admin.campaign_status, slow=False, admin_action="follow campaigns"
    ),
    Subcommand.CAMPAIGN_CLOSE: Handler(
        admin.campaign_close, slow=True, admin_action="close campaigns"
    ),
    Subcommand.REPORT: Handler(
        admin.report,
        slow=True,
        admin_action="see the governance report",
        snapshot=True,
    ),
}

# Subcommands whose replies have Previous page / Next page buttons.
PAGED = frozenset({Subcommand.WHOIS, Subcommand.MINE, Subcommand.ORPHANS})

WORKING = plain_reply("Working on it…")


def register(bot: Bot) -> None:
    """Register the /nhi command and its paging buttons on the bot."""

    @bot.bolt.command("/nhi")
    @reply_to_errors
    def nhi_command(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        handle_command(bot, ack, respond, command)

    @bot.bolt.action(Action.PREVIOUS_PAGE.value)
    @reply_to_errors
    def nhi_previous_page(
        ack: Ack, respond: Respond, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        turn_page(bot, ack, respond, body, action)

    @bot.bolt.action(Action.NEXT_PAGE.value)
    @reply_to_errors
    def nhi_next_page(
        ack: Ack, respond: Respond, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        turn_page(bot, ack, respond, body, action)


def handle_command(
    bot: Bot, ack: Ack, respond: Respond, command: dict[str, Any]
) -> None:
    """Reply to one /nhi invocation; bad input gets the usage and changes nothing."""
    user_id = str(command["user_id"])
    try:
        invocation = parse(str(command.get("text") or ""))
    except UsageError as error:
        ack(**usage_reply(str(error)).message())
        return
    if invocation.subcommand is Subcommand.HELP:
        ack(**help_reply().message())
        return
    logger.info("/nhi %s from Slack user %s", invocation.subcommand, user_id)
    handler = HANDLERS[invocation.subcommand]
    if not handler.slow:
        ack(**build_reply(bot, handler, user_id, invocation).message())
        return
    refused = _refusal_for(bot, handler, user_id)
    if refused is not None:
        ack(**refused.message())
        return
    ack(**WORKING.message())
    reply = build_reply(bot, handler, user_id, invocation)
    respond(**reply.message(), replace_original=False)


def turn_page(
    bot: Bot,
    ack: Ack,
    respond: Respond,
    body: dict[str, Any],
    action: dict[str, Any],
) -> None:
    """Replace a paged reply with the page its button names."""
    ack()
    text, offset = read_page_value(str(action.get("value") or ""))
    invocation = parse(text)
    if invocation.subcommand not in PAGED:
        raise UsageError("This button is not one Steward made.")
    handler = HANDLERS[invocation.subcommand]
    user_id = str(body["user"]["id"])
    reply = build_reply(bot, handler, user_id, invocation, offset=offset)
    respond(**reply.message(), replace_original=True)


def _admit(
    bot: Bot, session: Session, handler: Handler, user_id: str
) -> Viewer | Reply:
    """Return the viewer if they may run `handler`, else the refusal to send."""
    try:
        viewer = viewer_for(bot, session, user_id)
    except UnknownUserError as error:
        return plain_reply(escape(str(error)))
    if handler.admin_action is not None and not viewer.is_admin:
        return refusal(handler.admin_action)
    return viewer


def _refusal_for(bot: Bot, handler: Handler, user_id: str) -> Reply | None:
    with bot.steward.session() as session:
        admitted = _admit(bot, session, handler, user_id)
    return admitted if isinstance(admitted, Reply) else None


def build_reply(
    bot: Bot, handler: Handler, user_id: str, invocation: Invocation, offset: int = 0
) -> Reply:
    """Build the reply in one unit of work, committed before it is returned.

    Who may run the subcommand is checked again here, so that a paging button
    or a change of admins after the acknowledgement cannot widen access.
    """
    with bot.steward.session() as session:
        if handler.snapshot and session.get_bind().dialect.name == "postgresql":
            # Set before the first query, which opens the transaction.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        admitted = _admit(bot, session, handler, user_id)
        if isinstance(admitted, Reply):
            return admitted
        request = CommandContext(
            session=session,
            settings=bot.settings,
            viewer=admitted,
            invocation=invocation,
            offset=offset,
        )
        return handler.build(request)
