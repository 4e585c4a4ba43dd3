"""The App Home tab through signed events and button clicks to the running server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.blocks import MAX_VIEW_BLOCKS, check_blocks
from bot.local_api import SlackApi
from governance.app import Steward
from governance.audit.service import Actor
from governance.campaign.models import Review
from governance.campaign.service import start_campaign
from governance.claim.service import claim_identity
from governance.clock import utcnow
from governance.identity.models import RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.service import queue_revocation
from tests.bot.conftest import ADMIN_ID, OWNER_ID, STRANGER_ID, RunningServer
from tests.bot.helpers import (
    buttons,
    check_everything_sent,
    click,
    open_home,
    row_counts,
    texts,
    wait_until,
)
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
OWNER = Actor.person("owner@example.com")


@pytest.fixture
def people(steward: Steward) -> dict[str, int]:
    with steward.session() as session:
        return {
            "owner": make_person(session, "owner@example.com").id,
            "admin": make_person(session, "security@example.com").id,
            "bob": make_person(session, "bob@example.com").id,
        }


def _publishes(slack_api: SlackApi, user_id: str) -> list[dict[str, Any]]:
    return [
        call.params
        for call in slack_api.calls_to("views.publish")
        if call.params.get("user_id") == user_id
    ]


def _home_of(server: RunningServer, slack_api: SlackApi, user_id: str) -> list[Any]:
    """Open the Home tab of `user_id` and return the blocks published."""
    published = len(_publishes(slack_api, user_id))
    open_home(server, user_id)
    wait_until(lambda: len(_publishes(slack_api, user_id)) > published, "views.publish")
    view = slack_api.home_views[user_id]
    assert view["type"] == "home"
    check_blocks(view["blocks"], limit=MAX_VIEW_BLOCKS)
    return list(view["blocks"])


def _click_home(
    server: RunningServer, slack_api: SlackApi, user_id: str, action_id: str
) -> list[Any]:
    published = len(_publishes(slack_api, user_id))
    element = buttons(slack_api.home_views[user_id]["blocks"])[action_id]
    click(server, slack_api, user_id, element, in_view=True)
    wait_until(lambda: len(_publishes(slack_api, user_id)) > published, "views.publish")
    return list(slack_api.home_views[user_id]["blocks"])


def test_home_shows_own_identities_and_work(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    with steward.session() as session:
        owner = session.get_one(Person, people["owner"])
        bob = session.get_one(Person, people["bob"])
        owned = make_identity(
            session, owner=owner, name="owned", review_due_at=utcnow()
        )
        backed = make_identity(session, owner=bob, name="backed")
        backed.backup_owners.append(owner)
        bobs = make_identity(session, owner=bob, name="bobs-only")
        orphan = make_identity(
            session,
            state=IdentityState.ORPHANED,
            tier=RiskTier.PRIVILEGED,
            name="lost",
        )
        session.flush()
        start_campaign(session, actor=ADMIN, settings=steward.settings)
        session.execute(
            sa.update(Review).values(due_at=datetime(2030, 7, 1, 21, 30, tzinfo=UTC))
        )
        claim = claim_identity(session, orphan, actor=OWNER)
    before = row_counts(steward)

    shown = texts(_home_of(server, slack_api, OWNER_ID))
    assert "Your identities (2)" in shown
    assert f"(id {owned.id})" in shown
    assert f"(id {backed.id})" in shown
    assert f"(id {bobs.id})" not in shown
    assert "Reviews waiting for you (1)" in shown
    # Europe/Paris is UTC+2 in summer.
    assert "due 2030-07-01 23:30 CEST" in shown
    assert "Your claims waiting for approval (1)" in shown
    assert f"claim {claim.id} requested" in shown
    assert "Times are in Europe/Paris." in shown
    assert "Security overview" not in shown
    assert row_counts(steward) == before


def test_home_security_overview_for_admins(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    with steward.session() as session:
        owner = session.get_one(Person, people["owner"])
        past = utcnow() - timedelta(days=1)
        make_identity(session, owner=owner, review_due_at=past)
        make_identity(session, owner=owner, review_due_at=past)
        make_identity(session, state=IdentityState.ORPHANED, review_due_at=past)
        make_identity(session, state=IdentityState.ORPHANED)
        campaign = start_campaign(
            session, actor=ADMIN, settings=steward.settings, name="Spring <review>"
        )
        for tier, key in ((RiskTier.STANDARD, "a"), (RiskTier.PRIVILEGED, "b")):
            queue_revocation(
                session,
                make_identity(session, owner=owner, tier=tier),
                actor=ADMIN,
                action="revocation.requested",
                reason="test",
                dedupe_key=f"revoke-{key}",
            )

    shown = texts(_home_of(server, slack_api, ADMIN_ID))
    assert "Security overview" in shown
    assert "*Orphans:* 2" in shown
    assert "*Awaiting approval*\n1" in shown
    assert "*Pending*\n1" in shown
    assert "*Needs a human*\n0" in shown
    assert "Open campaigns (1)" in shown
    assert f"*Spring &lt;review&gt;* (campaign {campaign.id})" in shown
    assert "0 of 3 decided · 3 pending (0 overdue) · 1 orphans" in shown

    owner_view = texts(_home_of(server, slack_api, OWNER_ID))
    assert "Security overview" not in owner_view
    assert "Open campaigns" not in owner_view


def test_home_pages_300_identities(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    with steward.session() as session:
        owner = session.get_one(Person, people["owner"])
        ids = [
            make_identity(
                session,
                owner=owner,
                name=f"{number:03d}-" + "<&>" * 169,
                external_id=f"key-{number:03d}-" + "x" * 490,
                description="d" * 20_000,
            ).id
            for number in range(300)
        ]
        make_identity(session, owner=owner, review_due_at=utcnow())
        start_campaign(session, actor=ADMIN, settings=steward.settings)

    blocks = _home_of(server, slack_api, OWNER_ID)
    seen: list[int] = []
    pages = 0
    while True:
        pages += 1
        shown = texts(blocks)
        seen.extend(number for number in ids if f"(id {number})" in shown)
        if "home_page_next" not in buttons(blocks):
            break
        blocks = _click_home(server, slack_api, OWNER_ID, "home_page_next")
    assert pages == 16
    assert sorted(seen) == sorted(ids)
    assert "Showing 301 to 301 of 301" in texts(blocks)
    blocks = _click_home(server, slack_api, OWNER_ID, "home_page_previous")
    assert "Showing 281 to 300 of 301" in texts(blocks)
    # Refresh publishes the page it is on again.
    blocks = _click_home(server, slack_api, OWNER_ID, "home_refresh")
    assert "Showing 281 to 300 of 301" in texts(blocks)
    check_everything_sent(slack_api, [])


def test_home_refresh_shows_changes(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    shown = texts(_home_of(server, slack_api, OWNER_ID))
    assert "Your identities (0)" in shown
    assert "No live identities you own or back up." in shown
    with steward.session() as session:
        make_identity(session, owner=session.get_one(Person, people["owner"]))
    shown = texts(_click_home(server, slack_api, OWNER_ID, "home_refresh"))
    assert "Your identities (1)" in shown


def test_home_explains_unknown_person(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    shown = texts(_home_of(server, slack_api, STRANGER_ID))
    assert "(stranger@example.com) is not in Steward's people directory" in shown
    assert "Your identities" not in shown


def test_home_ignores_messages_tab(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    open_home(server, OWNER_ID, tab="messages")
    _home_of(server, slack_api, ADMIN_ID)
    assert _publishes(slack_api, OWNER_ID) == []


def test_home_rejects_malformed_button_value(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    _home_of(server, slack_api, OWNER_ID)
    element = buttons(slack_api.home_views[OWNER_ID]["blocks"])["home_refresh"]
    for value in ("-5", "x", "99999999999"):
        click(server, slack_api, OWNER_ID, {**element, "value": value}, in_view=True)
    # Listeners run in parallel, so the test waits for the well-formed refresh
    # sent last and then counts what was published.
    _click_home(server, slack_api, OWNER_ID, "home_refresh")
    assert len(_publishes(slack_api, OWNER_ID)) == 2
