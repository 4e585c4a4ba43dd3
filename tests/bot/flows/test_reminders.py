"""Reminders and escalations repeat pending reviews with the same buttons."""

from __future__ import annotations

import sqlalchemy as sa

from bot.actions import Action
from bot.blocks import check_blocks
from bot.context import Bot
from bot.local_api import SlackApi
from governance.app import Steward
from governance.audit.service import Actor
from governance.campaign.models import Review, ReviewStatus
from governance.person.models import Person
from governance.remediation.service import queue_notification
from tests.bot.conftest import OWNER_ID, SECURITY_CHANNEL, RunningServer
from tests.bot.flows.conftest import PICKED_ID
from tests.bot.flows.support import (
    TrackingExecutor,
    button,
    click,
    deliver,
    elements,
    message_text,
    open_campaign,
)

SCHEDULER = Actor.system("scheduler")


def test_reminder_repeats_pending_reviews(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    owner = people["owner"]
    with steward.sessions() as session:
        reviews = open_campaign(
            session, steward.settings, owner, privileged=0, standard=12
        )
        campaign_id = session.get_one(Review, reviews[0]).campaign_id
    deliver(bot, slack_api)
    first_page = slack_api.messages[0]
    click(
        server,
        slack_api,
        first_page,
        user=OWNER_ID,
        action=Action.REVIEW_CERTIFY,
        value=str(reviews[0]),
    )
    listeners.settle()
    with steward.sessions() as session:
        queue_notification(
            session,
            actor=SCHEDULER,
            dedupe_key="reminder:1",
            recipient=owner.email,
            template="review_reminder",
            context={"campaign_id": campaign_id, "reviewer_id": owner.id, "round": 1},
        )
        session.commit()

    [reminder] = deliver(bot, slack_api)

    check_blocks(reminder.blocks)
    text = message_text(reminder)
    assert "Reminder: 11 of your reviews" in text
    assert "The first 10 are below" in text
    listed = [
        e["value"]
        for e in elements(reminder)
        if e["action_id"] == Action.REVIEW_CERTIFY
    ]
    assert listed == [str(review_id) for review_id in reviews[1:11]]
    click(
        server,
        slack_api,
        reminder,
        user=OWNER_ID,
        action=Action.REVIEW_REVOKE,
        value=str(reviews[1]),
    )
    listeners.settle()
    assert reminder.edits == 1
    assert "*Revocation requested* by Olive Owner" in message_text(reminder)


def test_escalation_told_to_both_reviewers(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    owner, manager = people["owner"], people["picked"]
    with steward.sessions() as session:
        [review_id] = open_campaign(
            session, steward.settings, owner, privileged=1, standard=0
        )
    deliver(bot, slack_api)
    with steward.sessions() as session:
        review = session.get_one(Review, review_id)
        review.reviewer_id = manager.id
        review.escalation_level = 1
        for recipient in (manager.email, owner.email):
            queue_notification(
                session,
                actor=SCHEDULER,
                dedupe_key=f"escalated:{recipient}",
                recipient=recipient,
                template="review_escalated",
                context={
                    "review_id": review_id,
                    "campaign_id": review.campaign_id,
                    "from_person_id": owner.id,
                    "to_person_id": manager.id,
                },
            )
        session.commit()

    to_manager, to_owner = deliver(bot, slack_api)

    assert to_manager.channel == "D" + PICKED_ID
    assert to_owner.channel == "D" + OWNER_ID
    manager_text = message_text(to_manager)
    assert "Olive Owner did not answer this review in time" in manager_text
    assert "reassigned to Pia Picked" in manager_text
    assert button(to_manager, Action.REVIEW_REVOKE, str(review_id))["confirm"]
    owner_text = message_text(to_owner)
    assert "You did not answer this review in time" in owner_text
    assert "reassigned to Pia Picked" in owner_text
    assert elements(to_owner) == []

    # The new reviewer decides from the escalation, which then shows it.
    click(
        server,
        slack_api,
        to_manager,
        user=PICKED_ID,
        action=Action.REVIEW_CERTIFY,
        value=str(review_id),
    )
    listeners.settle()
    with steward.sessions() as session:
        assert session.get_one(Review, review_id).status is ReviewStatus.DECIDED
    assert "*Certified* by Pia Picked" in message_text(to_manager)


def test_escalation_to_security_team(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    people: dict[str, Person],
) -> None:
    owner = people["owner"]
    with steward.sessions() as session:
        [review_id] = open_campaign(
            session, steward.settings, owner, privileged=0, standard=1
        )
        session.execute(
            sa.update(Review).where(Review.id == review_id).values(reviewer_id=None)
        )
        queue_notification(
            session,
            actor=SCHEDULER,
            dedupe_key="escalated:security",
            recipient=None,
            template="review_escalated",
            context={
                "review_id": review_id,
                "campaign_id": session.get_one(Review, review_id).campaign_id,
                "from_person_id": owner.id,
                "to_person_id": None,
            },
        )
        session.commit()

    posted = deliver(bot, slack_api)

    escalation = posted[-1]
    assert escalation.channel == SECURITY_CHANNEL
    assert "reassigned to the security team" in message_text(escalation)
    assert button(escalation, Action.REVIEW_CERTIFY)["value"] == str(review_id)
