"""Block Kit building blocks that stay within Slack's limits.

Slack rejects a message whose blocks exceed a limit (`invalid_blocks`), so
every builder here cuts its text to the limit with an ellipsis, and
`check_blocks` verifies a whole message before it is sent. The limits are
those of Slack's Block Kit reference (api.slack.com/reference/block-kit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

Block = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_SECTION_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
# Slack truncates the top-level `text` of a message beyond 40,000 characters;
# Steward keeps notification text short because it is the notification body.
MAX_FALLBACK_TEXT = 3000

ELLIPSIS = "…"

T = TypeVar("T")


def cut(text: str, limit: int) -> str:
    """Return `text`, cut to at most `limit` characters with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def escape(text: str) -> str:
    """Escape the three characters that Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut(text, limit) or " "}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def section(
    text: str,
    *,
    fields: Sequence[str] = (),
    accessory: dict[str, Any] | None = None,
    block_id: str | None = None,
) -> Block:
    """Return a section block; text and fields are mrkdwn and cut to the limits."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if fields:
        block["fields"] = [
            mrkdwn(item, MAX_FIELD_TEXT) for item in fields[:MAX_SECTION_FIELDS]
        ]
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = cut(block_id, MAX_BLOCK_ID)
    return block


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [mrkdwn(text) for text in texts[:MAX_CONTEXT_ELEMENTS]],
    }


def divider() -> Block:
    return {"type": "divider"}


def confirm_dialog(title: str, text: str, confirm: str, deny: str = "Cancel") -> Block:
    return {
        "title": plain(title, MAX_CONFIRM_TITLE),
        "text": mrkdwn(text, MAX_CONFIRM_TEXT),
        "confirm": plain(confirm, 30),
        "deny": plain(deny, 30),
    }


def button(
    text: str,
    *,
    action_id: str,
    value: str,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    """Return a button; its value must be ids only and fit the value limit."""
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(
            f"button value of {len(value)} characters exceeds {MAX_BUTTON_VALUE}"
        )
    element: Block = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": cut(action_id, MAX_ACTION_ID),
        "value": value,
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def actions(elements: Sequence[Block], *, block_id: str | None = None) -> Block:
    """Return an actions block; more than 25 elements is a programming error."""
    if len(elements) > MAX_ACTION_ELEMENTS:
        raise ValueError(
            f"{len(elements)} elements in one actions block; at most "
            f"{MAX_ACTION_ELEMENTS}"
        )
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id is not None:
        block["block_id"] = cut(block_id, MAX_BLOCK_ID)
    return block


def pages(items: Sequence[T], per_page: int) -> list[Sequence[T]]:
    """Split `items` into consecutive pages of at most `per_page` (one empty page)."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if not items:
        return [items]
    return [items[start : start + per_page] for start in range(0, len(items), per_page)]


def check_blocks(blocks: Iterable[Block], *, limit: int = MAX_MESSAGE_BLOCKS) -> None:
    """Raise ValueError naming the first limit that `blocks` exceed."""
    blocks = list(blocks)
    if len(blocks) > limit:
        raise ValueError(f"{len(blocks)} blocks; at most {limit}")
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        text = block.get("text")
        if isinstance(text, dict):
            maximum = MAX_HEADER_TEXT if block["type"] == "header" else MAX_SECTION_TEXT
            if len(text.get("text", "")) > maximum:
                raise ValueError(f"{where}: text longer than {maximum}")
        for field in block.get("fields") or []:
            if len(field.get("text", "")) > MAX_FIELD_TEXT:
                raise ValueError(f"{where}: a field longer than {MAX_FIELD_TEXT}")
        elements = block.get("elements") or []
        if block.get("type") == "actions" and len(elements) > MAX_ACTION_ELEMENTS:
            raise ValueError(f"{where}: more than {MAX_ACTION_ELEMENTS} elements")
        accessory = block.get("accessory")
        for element in [*elements, *([accessory] if accessory else [])]:
            _check_element(where, element)


def _check_element(where: str, element: Block) -> None:
    if element.get("type") != "button":
        return
    if len(element["text"]["text"]) > MAX_BUTTON_TEXT:
        raise ValueError(f"{where}: button text longer than {MAX_BUTTON_TEXT}")
    if len(element.get("value", "")) > MAX_BUTTON_VALUE:
        raise ValueError(f"{where}: button value longer than {MAX_BUTTON_VALUE}")
