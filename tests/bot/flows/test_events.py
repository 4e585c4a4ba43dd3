"""Slack events: a deactivated account applies the owner-departure rule once."""

from __future__ import annotations

import sqlalchemy as sa

from bot.context import Bot
from bot.local_api import SlackApi
from bot.payloads import JSON, event_body, signed
from governance.app import Steward
from governance.campaign.models import Review
from governance.identity.models import Identity, OwnerOrigin
from governance.lifecycle import IdentityState
from governance.person.models import Person
from tests.bot.conftest import OWNER_ID, SIGNING_SECRET, RunningServer
from tests.bot.flows.support import TrackingExecutor, audit_count, open_campaign
from tests.factories import make_identity


def _user_change(slack_api: SlackApi, user_id: str, **changes: object) -> str:
    user = dict(slack_api.users[user_id])
    user.update(changes)
    return event_body({"type": "user_change", "user": user}, event_id="Ev0DEPART")


def test_deleted_user_departs_once(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    owner, backup = people["owner"], people["backup"]
    with steward.sessions() as session:
        inherited = make_identity(session, owner=owner, name="with-backup")
        inherited.backup_owners.append(session.get_one(Person, backup.id))
        orphaned = make_identity(session, owner=owner, name="alone")
        session.commit()
        inherited_id, orphaned_id = inherited.id, orphaned.id
        review_ids = open_campaign(
            session, steward.settings, owner, privileged=0, standard=1
        )

    body = _user_change(slack_api, OWNER_ID, deleted=True)
    first = server.send(signed(SIGNING_SECRET, body, JSON))
    listeners.settle()
    with steward.sessions() as session:
        events_after_first = audit_count(session)
    # Slack redelivers an event it thinks was not received, with a retry number.
    again = server.send(signed(SIGNING_SECRET, body, JSON, retry_num=1))
    listeners.settle()

    assert first.status == 200
    assert again.status == 200
    with steward.sessions() as session:
        assert audit_count(session) == events_after_first
        assert audit_count(session, "person.deactivated") == 1
        assert audit_count(session, "owner.departed") == 3
        person = session.get_one(Person, owner.id)
        assert not person.active
        assert person.deactivated_at is not None
        handed_on = session.get_one(Identity, inherited_id)
        assert handed_on.owner_id == backup.id
        assert handed_on.owner_origin is OwnerOrigin.INHERITED
        alone = session.get_one(Identity, orphaned_id)
        assert alone.owner_id is None
        assert alone.state is IdentityState.ORPHANED
        assert alone.claim_deadline is not None
        review = session.get_one(Review, review_ids[0])
        # The reviewed identity had no backup owner: its review goes to security.
        assert review.reviewer_id is None
        assert audit_count(session, "review.reassigned") == 1


def test_other_user_changes_keep_people(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    with steward.sessions() as session:
        make_identity(session, owner=people["owner"])
        session.commit()
        events_before = audit_count(session)

    moved = _user_change(slack_api, OWNER_ID, tz="America/Chicago")
    stranger = event_body(
        {
            "type": "user_change",
            "user": {"id": "U0ELSEWHERE", "deleted": True, "profile": {}},
        }
    )
    for body in (moved, stranger):
        assert server.send(signed(SIGNING_SECRET, body, JSON)).status == 200
    listeners.settle()

    with steward.sessions() as session:
        assert audit_count(session) == events_before
        person = session.get_one(Person, people["owner"].id)
        assert person.active
        assert person.time_zone == "America/Chicago"
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(Identity)
                .where(Identity.owner_id == person.id)
            )
            == 1
        )
