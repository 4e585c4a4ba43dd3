"""Delivering outbox notifications to Slack: exactly once, failures reported."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from bot.context import Bot
from bot.local_api import Failure, SlackApi
from bot.notifier import METADATA_EVENT, SlackNotifier
from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.delivery.models import SentMessage
from governance.remediation.models import Remediation, RemediationStatus
from governance.remediation.service import queue_notification
from tests.bot.conftest import OWNER_ID, SECURITY_CHANNEL
from tests.factories import make_identity, make_person


def _notifier(bot: Bot) -> SlackNotifier:
    return SlackNotifier(bot.steward, bot.client, bot.directory, worker_id="test")


def _queue(
    steward: Steward, recipient: str | None, template: str = "review_expired"
) -> int:
    with steward.session() as session:
        if recipient is not None and recipient.startswith("owner"):
            owner = make_person(session, recipient)
        else:
            owner = make_person(session)
        identity = make_identity(session, owner=owner, name="billing-api")
        row = queue_notification(
            session,
            actor=Actor.system("test"),
            dedupe_key=f"test:{identity.id}",
            recipient=recipient,
            template=template,
            context={"review_id": 999, "campaign_id": 3},
            identity_id=identity.id,
        )
        return row.id


def _row(steward: Steward, row_id: int) -> Remediation:
    with steward.session() as session:
        return session.get_one(Remediation, row_id)


def _later(minutes: int = 60) -> time_machine.travel:
    return time_machine.travel(utcnow() + timedelta(minutes=minutes), tick=False)


def test_direct_message_sent_once(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, "owner@example.com")
    notifier = _notifier(bot)

    stats = notifier.run_once()
    assert stats.outcomes == {"sent": 1}
    posted = slack_api.messages_in(slack_api.dm_channel(OWNER_ID))
    assert len(posted) == 1
    assert posted[0].metadata is not None
    assert posted[0].metadata["event_type"] == METADATA_EVENT
    assert posted[0].metadata["event_payload"] == {"outbox_id": row_id, "page": 0}
    assert "expired unanswered" in posted[0].blocks[0]["text"]["text"]
    assert _row(bot.steward, row_id).status is RemediationStatus.SUCCEEDED

    with _later():
        assert notifier.run_once().taken == 0
    assert len(slack_api.messages) == 1
    with bot.steward.session() as session:
        sent = session.scalars(sa.select(SentMessage)).one()
        assert sent.remediation_id == row_id
        assert sent.message_ref == posted[0].ts


def test_email_looked_up_once(bot: Bot, slack_api: SlackApi) -> None:
    _queue(bot.steward, "owner@example.com")
    notifier = _notifier(bot)
    notifier.run_once()
    with bot.steward.session() as session:
        identity = make_identity(session)
        queue_notification(
            session,
            actor=Actor.system("test"),
            dedupe_key="second",
            recipient="owner@example.com",
            template="review_expired",
            context={"review_id": 1, "campaign_id": 1},
            identity_id=identity.id,
        )
    notifier.run_once()
    assert len(slack_api.calls_to("users.lookupByEmail")) == 1
    # The user is read before each direct message, to catch a deactivation.
    assert len(slack_api.calls_to("users.info")) == 1
    assert len(slack_api.messages_in(slack_api.dm_channel(OWNER_ID))) == 2


def test_rate_limit_waits_retry_after(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, None)
    slack_api.rate_limit("chat.postMessage", retry_after=120)
    notifier = _notifier(bot)

    assert notifier.run_once().outcomes == {"rate_limited": 1}
    row = _row(bot.steward, row_id)
    assert row.status is RemediationStatus.PENDING
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 100 < wait <= 120
    assert slack_api.messages == []

    with _later(1):
        assert notifier.run_once().taken == 0
    with _later(3):
        assert notifier.run_once().outcomes == {"sent": 1}
    assert len(slack_api.messages_in(SECURITY_CHANNEL)) == 1


def test_timeout_after_post_not_repeated(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, None)
    # Slack posts the message but responds after the client's 2 s timeout.
    slack_api.fail("chat.postMessage", Failure(delay=3.0, after_effect=True))
    notifier = _notifier(bot)

    assert notifier.run_once().outcomes == {"retry": 1}
    assert len(slack_api.messages) == 1
    assert _row(bot.steward, row_id).stage == "outcome_unknown"

    with _later():
        assert notifier.run_once().outcomes == {"sent": 1}
    assert len(slack_api.messages) == 1
    assert len(slack_api.calls_to("conversations.history")) == 1
    assert _row(bot.steward, row_id).status is RemediationStatus.SUCCEEDED


def test_timeout_before_post_posts_again(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, None)
    slack_api.fail("chat.postMessage", Failure(delay=3.0, after_effect=False))
    notifier = _notifier(bot)

    notifier.run_once()
    assert slack_api.messages == []
    with _later():
        notifier.run_once()
    assert len(slack_api.messages) == 1
    assert _row(bot.steward, row_id).status is RemediationStatus.SUCCEEDED


def test_deactivated_user_never_messaged(bot: Bot, slack_api: SlackApi) -> None:
    slack_api.users[OWNER_ID]["deleted"] = True
    row_id = _queue(bot.steward, "owner@example.com")
    notifier = _notifier(bot)

    assert notifier.run_once().outcomes == {"undeliverable": 1}
    assert slack_api.messages_in(slack_api.dm_channel(OWNER_ID)) == []
    row = _row(bot.steward, row_id)
    assert row.status is RemediationStatus.NEEDS_HUMAN
    assert row.last_error is not None
    assert "deactivated" in row.last_error

    # The failure reaches the security channel on the next pass.
    notifier.run_once()
    reports = slack_api.messages_in(SECURITY_CHANNEL)
    assert len(reports) == 1
    assert "could not be delivered" in reports[0].text
    assert "owner@example.com" in reports[0].text
    with bot.steward.session() as session:
        actions = session.scalars(sa.select(AuditEvent.action)).all()
    assert "notification.undelivered" in actions


def test_email_without_slack_user_reported(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, "nobody-in-slack@example.com")
    with bot.steward.session() as session:
        make_person(session, "nobody-in-slack@example.com")
    notifier = _notifier(bot)
    notifier.run_once()
    row = _row(bot.steward, row_id)
    assert row.status is RemediationStatus.NEEDS_HUMAN
    assert row.last_error == "no Slack user has the email nobody-in-slack@example.com"
    with bot.steward.session() as session:
        person = session.scalars(
            sa.text("SELECT chat_status FROM person WHERE email = :email"),
            {"email": "nobody-in-slack@example.com"},
        ).one()
    assert person == "missing"


def test_archived_security_channel_no_loop(bot: Bot, slack_api: SlackApi) -> None:
    slack_api.archived.add(SECURITY_CHANNEL)
    row_id = _queue(bot.steward, None)
    notifier = _notifier(bot)
    assert notifier.run_once().outcomes == {"undeliverable": 1}
    row = _row(bot.steward, row_id)
    assert row.status is RemediationStatus.NEEDS_HUMAN
    assert row.last_error == "chat.postMessage failed: is_archived"
    # No report of the failure is queued for the channel that failed.
    with _later():
        assert notifier.run_once().taken == 0


def test_server_error_retried_with_history_check(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, None)
    slack_api.fail(
        "chat.postMessage", Failure(body={"ok": False, "error": "fatal_error"})
    )
    notifier = _notifier(bot)
    assert notifier.run_once().outcomes == {"retry": 1}
    with _later():
        assert notifier.run_once().outcomes == {"sent": 1}
    assert len(slack_api.messages) == 1
    assert _row(bot.steward, row_id).attempts == 2


def test_obsolete_request_not_sent(bot: Bot, slack_api: SlackApi) -> None:
    row_id = _queue(bot.steward, "owner@example.com", template="review_request")
    assert _notifier(bot).run_once().outcomes == {"obsolete": 1}
    assert slack_api.messages == []
    row = _row(bot.steward, row_id)
    assert row.status is RemediationStatus.CANCELLED
    assert row.outcome == "not sent: campaign 3 not found"
