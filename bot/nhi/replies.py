"""The parts of every /nhi reply: the request, the reply, the paging buttons.

A reply is an ephemeral message: fallback text plus blocks that pass
`check_blocks`. Paged replies carry Previous page / Next page buttons whose
value is the command text and the offset of the page to show, nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.blocks import Block, check_blocks, context, cut, escape, header, section
from bot.errors import UsageError
from bot.inventory_blocks import paging_actions
from bot.nhi.parsing import MAX_TEXT_LENGTH, USAGE, Invocation
from bot.viewer import Viewer
from governance.identity.queries import Listing
from governance.settings import Settings

# Rows per page in paged replies; with the header, counts and buttons a page
# stays well under the 50 blocks of a message.
PAGE_SIZE = 20
# Steward is sized for about a million identities; a larger offset is
# rejected before any query.
MAX_OFFSET = 10_000_000


class Action(StrEnum):
    """Action ids of the buttons in /nhi replies."""

    PREVIOUS_PAGE = "nhi_page_previous"
    NEXT_PAGE = "nhi_page_next"


@dataclass(frozen=True)
class CommandContext:
    """The request being handled: the database session, the settings, the sender."""

    session: Session
    settings: Settings
    viewer: Viewer
    invocation: Invocation
    offset: int = 0


@dataclass(frozen=True)
class Reply:
    """An ephemeral reply whose blocks are checked against Block Kit's limits."""

    text: str
    blocks: list[Block]

    def __post_init__(self) -> None:
        check_blocks(self.blocks)

    def message(self) -> dict[str, Any]:
        """Return the keyword arguments of `ack` or `respond` for this reply."""
        return {"response_type": "ephemeral", "text": self.text, "blocks": self.blocks}


Build = Callable[[CommandContext], Reply]


def plain_reply(text: str) -> Reply:
    """Return a reply of one sentence; `text` must be mrkdwn-safe already."""
    return Reply(text=cut(text, 3000), blocks=[section(text)])


def usage_lines() -> str:
    return "\n".join(f"`/nhi {usage}`: {meaning}" for usage, meaning in USAGE)


def help_reply() -> Reply:
    return Reply(
        text="Steward's /nhi subcommands",
        blocks=[header("/nhi subcommands"), section(usage_lines())],
    )


def usage_reply(problem: str) -> Reply:
    """Return the reply to input that does not parse: the problem and the usage."""
    return Reply(
        text=cut(problem, 3000),
        blocks=[section(escape(problem)), section(usage_lines())],
    )


def refusal(action: str) -> Reply:
    return plain_reply(
        f"Only security admins may {action}. Nothing was changed. "
        "Ask the security team if you need this."
    )


def page_value(invocation: Invocation, offset: int) -> str:
    """Return a paging button's value: the command text and an offset."""
    return json.dumps({"text": invocation.text, "offset": offset})


def read_page_value(value: str) -> tuple[str, int]:
    """Return the command text and offset of a paging button's value."""
    try:
        document = json.loads(value)
        text = document["text"]
        offset = document["offset"]
    except (ValueError, KeyError, TypeError):
        raise UsageError("This button is not one Steward made.") from None
    if (
        not isinstance(text, str)
        or len(text) > MAX_TEXT_LENGTH
        or not isinstance(offset, int)
        or isinstance(offset, bool)
        or not 0 <= offset <= MAX_OFFSET
    ):
        raise UsageError("This button is not one Steward made.")
    return text, offset


def page_buttons(request: CommandContext, listing: Listing[Any]) -> Block | None:
    return paging_actions(
        listing,
        page_size=PAGE_SIZE,
        previous_action=Action.PREVIOUS_PAGE,
        next_action=Action.NEXT_PAGE,
        value_for=lambda offset: page_value(request.invocation, offset),
        block_id="nhi_paging",
    )


def zone_note(viewer: Viewer) -> Block:
    return context(f"Times are in {escape(viewer.time_zone or 'UTC')}.")
