"""Block Kit drawn as plain text for the terminal, with numbered controls.

Every interactive element (a button, a user picker) gets a number; the
console maps the number back to the element so that typing it sends the
click Slack would send.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

WIDTH = 78

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<([^>]+)>")
# Slack formats a marked span only when its markers sit at word boundaries:
# no letter or digit just outside the span, no space just inside it. So
# `snake_case_name` and `2*3*4` stay as they are.
_CODE = re.compile(r"(?<![^\W_])`([^`\n]+)`(?![^\W_])")
_BOLD = re.compile(r"(?<![^\W_])(?<!\*)\*(?=\S)([^*\n]*?\S)\*(?!\*)(?![^\W_])")
_ITALIC = re.compile(r"(?<!\w)_(?=\S)([^_\n]*?\S)_(?!\w)")


@dataclass(frozen=True)
class Control:
    """One clickable element and where it sits."""

    number: int
    kind: str  # "button" or "users_select"
    action_id: str
    block_id: str
    value: str
    label: str
    confirm: dict[str, Any] | None
    # Where the element is: a message (channel, ts) or a view (view id).
    channel: str | None = None
    message_ts: str | None = None
    view_id: str | None = None
    message: dict[str, Any] | None = None


@dataclass
class Drawing:
    """Text lines and the controls numbered in them."""

    lines: list[str] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)


def strip_markers(text: str) -> str:
    """Drop mrkdwn's bold, italic and code markers where Slack would format.

    Text inside a code span is kept verbatim, markers included.
    """
    parts = _CODE.split(text)
    for index in range(0, len(parts), 2):
        part = parts[index]
        # Two rounds undo a span nested in another, such as *_both_*.
        for _ in range(2):
            part = _ITALIC.sub(r"\1", _BOLD.sub(r"\1", part))
        parts[index] = part
    return "".join(parts)


def plain_text(text: str) -> str:
    """Return mrkdwn as terminal text.

    Links show by their label, formatting markers are dropped and entities
    are unescaped.
    """
    text = _LINK.sub(r"\2", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = strip_markers(text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def element_text(element: dict[str, Any] | None) -> str:
    """Return a text object as shown: mrkdwn converted, plain_text as it is."""
    if not element:
        return ""
    text = str(element.get("text", ""))
    if element.get("type") == "plain_text":
        return text
    return plain_text(text)


def _wrap(text: str, indent: str = "  ") -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(
            textwrap.wrap(
                paragraph,
                WIDTH,
                initial_indent=indent,
                subsequent_indent=indent,
                replace_whitespace=False,
            )
            or [indent.rstrip()]
        )
    return lines


class Drawer:
    """Draws messages and views, numbering controls from a running counter."""

    def __init__(self, first_number: int = 1) -> None:
        self.next_number = first_number

    def draw(
        self,
        blocks: list[dict[str, Any]],
        *,
        fallback: str = "",
        channel: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
    ) -> Drawing:
        drawing = Drawing()
        if not blocks:
            drawing.lines.extend(_wrap(plain_text(fallback)))
            return drawing
        for block in blocks:
            self._block(drawing, block, channel, message_ts, view_id)
        return drawing

    def _block(
        self,
        drawing: Drawing,
        block: dict[str, Any],
        channel: str | None,
        message_ts: str | None,
        view_id: str | None,
    ) -> None:
        kind = block.get("type")
        block_id = str(block.get("block_id", ""))
        if kind == "header":
            drawing.lines.append("  " + element_text(block.get("text")).upper())
        elif kind == "section":
            drawing.lines.extend(_wrap(element_text(block.get("text"))))
            for item in block.get("fields") or []:
                drawing.lines.extend(_wrap(element_text(item), "    "))
            accessory = block.get("accessory")
            if accessory:
                self._element(
                    drawing, accessory, block_id, channel, message_ts, view_id
                )
        elif kind == "context":
            texts = [element_text(item) for item in block.get("elements") or []]
            drawing.lines.extend(_wrap("  ".join(texts), "    "))
        elif kind == "divider":
            drawing.lines.append("  " + "-" * (WIDTH - 4))
        elif kind == "actions":
            for element in block.get("elements") or []:
                self._element(drawing, element, block_id, channel, message_ts, view_id)
        elif kind == "input":
            label = element_text(block.get("label"))
            element = block.get("element") or {}
            drawing.lines.append(f"  {label}: <{element.get('type', 'input')}>")
            self._element(drawing, element, block_id, channel, message_ts, view_id)

    def _element(
        self,
        drawing: Drawing,
        element: dict[str, Any],
        block_id: str,
        channel: str | None,
        message_ts: str | None,
        view_id: str | None,
    ) -> None:
        kind = element.get("type")
        if kind not in {"button", "users_select"}:
            return
        number = self.next_number
        self.next_number += 1
        label = (
            element_text(element.get("text"))
            if kind == "button"
            else element_text(element.get("placeholder")) or "pick a person"
        )
        control = Control(
            number=number,
            kind=str(kind),
            action_id=str(element.get("action_id", "")),
            block_id=block_id,
            value=str(element.get("value", "")),
            label=label,
            confirm=element.get("confirm"),
            channel=channel,
            message_ts=message_ts,
            view_id=view_id,
        )
        drawing.controls.append(control)
        hint = " (then an email)" if kind == "users_select" else ""
        drawing.lines.append(f"    [{number}] {label}{hint}")
