"""The /nhi slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, Respond

from bot.context import Bot
from bot.errors import reply_to_errors

USAGE = "Usage: /nhi help | status NAME | whois REFERENCE | mine | orphans | report"


def register(bot: Bot) -> None:
    """Register the /nhi command on the bot."""

    @bot.bolt.command("/nhi")
    @reply_to_errors
    def nhi(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        ack(response_type="ephemeral", text=USAGE)
