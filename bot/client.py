"""The Slack Web API client, built from the settings."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

from governance.errors import ConfigurationError
from governance.settings import SlackSettings


def build_client(
    settings: SlackSettings, *, retry_rate_limited: bool = True
) -> WebClient:
    """Return a WebClient for the bot token, pointed at `settings.api_url`.

    The client retries a call only when Slack returned 429, after Retry-After
    (a rate-limited call did not take effect). It never retries a call whose
    connection failed, because a message may have been posted before the
    connection dropped; the outbox decides what to do with such a call.
    """
    if settings.bot_token is None:
        raise ConfigurationError(
            "slack.bot_token (STEWARD_SLACK__BOT_TOKEN) is not set; it is the "
            "xoxb- token from the Slack app's OAuth page"
        )
    handlers: list[RetryHandler] = (
        [RateLimitErrorRetryHandler(max_retry_count=2)] if retry_rate_limited else []
    )
    return WebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.api_url,
        timeout=settings.timeout_seconds,
        retry_handlers=handlers,
    )
