"""The Slack Web API client, built from the settings."""

from __future__ import annotations

from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.web import SlackResponse

from bot.metrics import record_slack_error
from governance.errors import ConfigurationError
from governance.settings import SlackSettings

# Slack's app-level tokens, used for Socket Mode, start with this prefix. Bot
# tokens start with xoxb-.
APP_TOKEN_PREFIX = "xapp-"  # noqa: S105 (a prefix, not a secret)


class CountingWebClient(WebClient):
    """A WebClient that counts every failed call in the Slack error metric.

    Every Web API method goes through `api_call`, so the count includes
    errors that the caller handles (such as `users_not_found` for a person
    without a Slack account). Rate-limited calls count once, after the
    retries of the retry handler.
    """

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            record_slack_error(api_method, str(error.response.get("error", "unknown")))
            raise
        except OSError as error:
            # urllib raises TimeoutError when a response is late, and a URLError
            # whose reason is TimeoutError when connecting takes too long.
            reason = error.reason if isinstance(error, URLError) else error
            timed_out = isinstance(reason, TimeoutError)
            record_slack_error(
                api_method, "timeout" if timed_out else "connection_error"
            )
            raise


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
    return CountingWebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.api_url,
        timeout=settings.timeout_seconds,
        retry_handlers=handlers,
    )
