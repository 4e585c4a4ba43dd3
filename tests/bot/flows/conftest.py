"""Fixtures for the flow tests: the bot with a listener pool the tests can wait on.

Listeners acknowledge first and edit messages afterwards on Bolt's listener
threads, so a test waits for those threads (`listeners.settle()`) before it
looks at the Web API stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from bot.app import build_bot
from bot.context import Bot
from bot.local_api import SlackApi
from governance.app import Steward
from governance.person.models import Person
from tests.bot.conftest import ADMIN_ID, GUEST_ID, OWNER_ID, STRANGER_ID
from tests.bot.flows.support import TrackingExecutor
from tests.factories import make_person

BACKUP_ID = "U0BACKUP"
PICKED_ID = "U0PICKED"


@pytest.fixture
def listeners() -> Iterator[TrackingExecutor]:
    executor = TrackingExecutor()
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture
def bot(steward: Steward, listeners: TrackingExecutor) -> Bot:
    return build_bot(steward, listener_executor=listeners)


@pytest.fixture
def people(steward: Steward, slack_api: SlackApi) -> dict[str, Person]:
    """People for the stand-in's users; the owner reads in Paris time."""
    slack_api.add_user(BACKUP_ID, "backup@example.com", name="Bea Backup")
    slack_api.add_user(PICKED_ID, "picked@example.com", name="Pia Picked")
    with steward.session() as session:
        return _make_people(session)


def _make_people(session: Session) -> dict[str, Person]:
    specs = {
        "owner": ("owner@example.com", "Olive Owner", OWNER_ID, "Europe/Paris"),
        "admin": ("security@example.com", "Sam Security", ADMIN_ID, "UTC"),
        "guest": ("guest@example.com", "Gus Guest", GUEST_ID, "UTC"),
        "stranger": ("stranger@example.com", "Stan Stranger", STRANGER_ID, "UTC"),
        "backup": ("backup@example.com", "Bea Backup", BACKUP_ID, "America/New_York"),
        "picked": ("picked@example.com", "Pia Picked", PICKED_ID, "Asia/Tokyo"),
    }
    return {
        role: make_person(
            session,
            email,
            display_name=name,
            slack_user_id=user_id,
            time_zone=zone,
        )
        for role, (email, name, user_id, zone) in specs.items()
    }
