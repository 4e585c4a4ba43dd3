"""The bot's app factory: one Bolt app with every listener, built from the settings."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot import commands, home
from bot.client import build_client
from bot.context import Bot, Registrar
from bot.directory import Directory
from bot.errors import handle_unhandled
from bot.flows import approvals, claims, events, reviews
from governance.app import Steward
from governance.errors import ConfigurationError

logger = logging.getLogger(__name__)

# Each listener module registers its listeners on a new bot.
REGISTRARS: list[Registrar] = [
    commands.register,
    home.register,
    reviews.register,
    claims.register,
    approvals.register,
    events.register,
]


def build_bot(
    steward: Steward,
    *,
    client: WebClient | None = None,
    extra: list[Registrar] | None = None,
    listener_executor: Executor | None = None,
) -> Bot:
    """Build the Bolt app with every listener registered.

    Raises ConfigurationError when the signing secret is missing (HTTP mode
    cannot verify requests without it) and neither is an app-level token
    configured for Socket Mode. `listener_executor` runs the listeners (Bolt
    uses a pool of five threads when it is None).
    """
    slack = steward.settings.slack
    if slack.signing_secret is None and slack.app_token is None:
        raise ConfigurationError(
            "slack.signing_secret (STEWARD_SLACK__SIGNING_SECRET) is not set; "
            "it is on the Slack app's Basic Information page"
        )
    client = client or build_client(slack)
    bolt = App(
        client=client,
        signing_secret=(
            slack.signing_secret.get_secret_value()
            if slack.signing_secret is not None
            else None
        ),
        # The token is checked by the readiness probe, not at import time.
        token_verification_enabled=False,
        # Listeners commit first, then acknowledge, then do slower work.
        process_before_response=False,
        logger=logging.getLogger("slack_bolt"),
        listener_executor=listener_executor,
    )

    @bolt.error
    def _on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        return handle_unhandled(error, body)

    bot = Bot(
        steward=steward,
        client=client,
        directory=Directory(steward, client),
        bolt=bolt,
    )
    for register in [*REGISTRARS, *(extra or [])]:
        register(bot)
    return bot
