"""The App Home tab."""

from __future__ import annotations

from bot.context import Bot


def register(bot: Bot) -> None:
    """Register the Home tab's listeners on the bot."""
