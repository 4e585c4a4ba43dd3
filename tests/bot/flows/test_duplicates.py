"""Duplicate deliveries of one click produce one decision and one remediation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from bot.actions import Action
from bot.context import Bot
from bot.local_api import SlackApi
from bot.payloads import FORM, SlackRequest, block_action_body, signed
from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.campaign.models import Decision, Review
from governance.person.models import Person
from governance.remediation.models import Remediation, RemediationKind
from tests.bot.conftest import OWNER_ID, SIGNING_SECRET, Response, RunningServer
from tests.bot.flows.support import (
    TrackingExecutor,
    audit_count,
    deliver,
    open_campaign,
)


def _revoke_click(
    steward: Steward, bot: Bot, slack_api: SlackApi, people: dict[str, Person]
) -> tuple[int, str]:
    with steward.sessions() as session:
        [review_id] = open_campaign(
            session, steward.settings, people["owner"], privileged=0, standard=1
        )
    [message] = deliver(bot, slack_api)
    body = block_action_body(
        user_id=OWNER_ID,
        action_id=Action.REVIEW_REVOKE,
        value=str(review_id),
        channel_id=message.channel,
        message_ts=message.ts,
        response_url=slack_api.response_url,
    )
    return review_id, body


def _assert_decided_once(
    steward: Steward, slack_api: SlackApi, review_id: int, events_before: int
) -> None:
    with steward.sessions() as session:
        review = session.get_one(Review, review_id)
        assert review.decision is Decision.REVOKE
        decided = session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "review.decided",
                AuditEvent.object_id == str(review_id),
            )
        )
        assert decided == 1
        kinds = session.execute(
            sa.select(Remediation.kind, sa.func.count())
            .where(Remediation.review_id == review_id)
            .group_by(Remediation.kind)
        ).all()
        assert dict(kinds) == {RemediationKind.REVOKE: 1, RemediationKind.TICKET: 1}
        # The decision, the identity's transition and the queued revocation.
        assert audit_count(session) == events_before + 3
        assert verify_database(session).ok
    [message] = slack_api.messages
    assert message.edits == 1
    [answer] = slack_api.responses
    assert answer["text"].startswith("Already decided by Olive Owner")


def _events(steward: Steward) -> int:
    with steward.sessions() as session:
        return audit_count(session)


@pytest.mark.parametrize("retry_num", [None, 1])
def test_repeated_delivery_decides_once(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
    retry_num: int | None,
) -> None:
    review_id, body = _revoke_click(steward, bot, slack_api, people)
    events_before = _events(steward)

    first = server.send(signed(SIGNING_SECRET, body, FORM))
    listeners.settle()
    second = server.send(signed(SIGNING_SECRET, body, FORM, retry_num=retry_num))
    listeners.settle()

    assert (first.status, second.status) == (200, 200)
    _assert_decided_once(steward, slack_api, review_id, events_before)


def test_simultaneous_deliveries_decide_once(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    review_id, body = _revoke_click(steward, bot, slack_api, people)
    events_before = _events(steward)
    request = signed(SIGNING_SECRET, body, FORM)
    barrier = threading.Barrier(2)

    def send(copy: SlackRequest) -> Response:
        barrier.wait(timeout=30)
        return server.send(copy)

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(send, [request, request]))
    listeners.settle()

    assert [response.status for response in responses] == [200, 200]
    _assert_decided_once(steward, slack_api, review_id, events_before)
