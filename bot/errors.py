"""One error handler for Slack requests.

An error the user can fix (an unknown identity, a missing permission, a
malformed command) gets one plain ephemeral sentence. Any other error gets a
short reference id, which the ERROR log line carries too, so that the user
can quote it and an operator can find the traceback.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import Ack, BoltResponse, Respond

from bot.directory import UnknownUserError
from governance.errors import StewardError

logger = logging.getLogger(__name__)

Listener = TypeVar("Listener", bound=Callable[..., Any])


class UsageError(Exception):
    """Input the bot cannot act on; the message describes valid input."""


USER_ERRORS: tuple[type[Exception], ...] = (StewardError, UnknownUserError, UsageError)


def new_reference() -> str:
    """Return a short random id that ties a user's error message to a log line."""
    return secrets.token_hex(4)


def unexpected_error_text(reference: str) -> str:
    return (
        f"Something went wrong on Steward's side (reference {reference}). "
        "Nothing was changed by this request; the security team can look the "
        "reference up in Steward's log."
    )


def describe(error: Exception) -> tuple[str, bool]:
    """Return the text to show for `error` and whether it is the user's to fix."""
    if isinstance(error, USER_ERRORS):
        return str(error), True
    reference = new_reference()
    logger.error("unexpected error, reference %s", reference, exc_info=error)
    return unexpected_error_text(reference), False


def reply_to_errors(listener: Listener) -> Listener:
    """Wrap a Bolt listener so that its errors reach the user ephemerally.

    The wrapped listener must take `ack` and `respond`. It acknowledges the
    request if the listener had not, then responds with `describe`'s text.
    """

    @functools.wraps(listener)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return listener(*args, **kwargs)
        except Exception as error:
            text, _ = describe(error)
            ack: Ack = kwargs["ack"]
            respond: Respond = kwargs["respond"]
            if ack.response is None:
                ack()
            try:
                respond(text=text, response_type="ephemeral", replace_original=False)
            except Exception:
                logger.warning("could not tell the user about an error: %s", text)
            return None

    return wrapper  # type: ignore[return-value]


def handle_unhandled(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """Log an error no listener caught, with a reference id, and return 500."""
    reference = new_reference()
    kind = body.get("type") or body.get("command") or "request"
    logger.error(
        "unhandled error in a %s listener, reference %s",
        kind,
        reference,
        exc_info=error,
    )
    return BoltResponse(status=500, body="")
