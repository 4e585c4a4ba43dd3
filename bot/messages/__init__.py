"""Rendering notifications into Slack messages, one renderer per template.

A renderer reads the rows behind a notification's ids and returns the pages
to post: each page is one message within Block Kit's limits. A page's `key`
names what it shows (it becomes the `sent_message` key), so that a later
change can find the message and edit it in place with `chat.update`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.blocks import Block
from governance.person.models import Person
from governance.remediation.notifications import Template


class Destination(StrEnum):
    """The channel a template's messages go to."""

    RECIPIENT = "recipient"  # the person named by email, or security when None
    SECURITY = "security"
    ORPHANS = "orphans"


@dataclass(frozen=True)
class Page:
    """One message to post: fallback text, blocks, and what it lists."""

    text: str
    blocks: list[Block]
    # A stable name for what the message shows; None for a message never edited.
    key: str | None = None
    items: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderRequest:
    """The input of a renderer: the notification and its reader."""

    remediation_id: int
    template: str
    context: dict[str, Any]
    recipient: Person | None
    time_zone: str | None


Renderer = Callable[[Session, RenderRequest], list[Page]]


@dataclass(frozen=True)
class TemplateSpec:
    destination: Destination
    render: Renderer


_TEMPLATES: dict[str, TemplateSpec] = {}


def renders(
    template: Template, destination: Destination
) -> Callable[[Renderer], Renderer]:
    """Register the decorated function as the renderer of `template`."""

    def decorate(render: Renderer) -> Renderer:
        _TEMPLATES[template.value] = TemplateSpec(destination, render)
        return render

    return decorate


def spec_for(template: str) -> TemplateSpec | None:
    """Return the registered renderer and destination of a template, if any."""
    return _TEMPLATES.get(template)
