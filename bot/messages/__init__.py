"""Rendering notifications into Slack messages, one renderer per template.

A renderer reads the rows behind a notification's ids and returns the pages
to post: each page is one message within Block Kit's limits. A page's `key`
names what it shows (it becomes the `sent_message` key), so that a later
change can find the message and edit it in place with `chat.update`.

A template whose messages change after they are posted (a button was
clicked, a decision landed) also registers a refresher with `@refreshes`.
The refresher rebuilds one posted page from the `key` and `items` stored
with it, so the edited message lists the same things in their current state.
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


@dataclass(frozen=True)
class RefreshRequest:
    """The input of a refresher: one posted page's key and items, and its reader."""

    template: str
    key: str
    items: dict[str, Any]
    # The reader's zone for a direct message; channel messages ignore it.
    time_zone: str | None


Refresher = Callable[[Session, RefreshRequest], Page | None]

_REFRESHERS: dict[str, Refresher] = {}


def refreshes(template: Template) -> Callable[[Refresher], Refresher]:
    """Register the decorated function as the refresher of `template`'s pages."""

    def decorate(refresh: Refresher) -> Refresher:
        _REFRESHERS[template.value] = refresh
        return refresh

    return decorate


def refresher_for(template: str) -> Refresher | None:
    """Return the refresher of a template's posted pages, if it has one."""
    return _REFRESHERS.get(template)
