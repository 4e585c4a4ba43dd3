"""The outbox workers that need Slack, for `steward worker` and `steward serve`."""

from __future__ import annotations

import logging

from bot.client import build_client
from bot.directory import Directory
from bot.notifier import SlackNotifier
from governance.app import Steward
from governance.scheduler.jobs import Drainer

logger = logging.getLogger(__name__)


def slack_drainers(steward: Steward, *, worker_id: str) -> list[Drainer]:
    """Return the Slack notifier, or nothing when Slack is not configured.

    Without Slack credentials notifications stay queued in the outbox and
    `steward remediation list --status pending` shows them.
    """
    if steward.settings.slack.bot_token is None:
        logger.warning(
            "slack.bot_token is not set: notifications stay queued in the outbox"
        )
        return []
    client = build_client(steward.settings.slack)
    return [
        SlackNotifier(steward, client, Directory(steward, client), worker_id=worker_id)
    ]
