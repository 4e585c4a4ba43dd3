"""Certification prompts in Slack: the request, the decision buttons, Not mine."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from bot.actions import Action, Callback
from bot.blocks import check_blocks
from bot.context import Bot
from bot.local_api import SlackApi
from bot.timefmt import show_date, show_time
from governance.app import Steward
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.models import Decision, Review, ReviewStatus
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from tests.bot.conftest import OWNER_ID, STRANGER_ID, RunningServer
from tests.bot.flows.conftest import BACKUP_ID, PICKED_ID
from tests.bot.flows.support import (
    TrackingExecutor,
    audit_count,
    button,
    click,
    deliver,
    elements,
    message_text,
    open_campaign,
    submit_view,
)

PARIS = "Europe/Paris"


def _open(steward: Steward, people: dict[str, Person], **options: Any) -> list[int]:
    with steward.sessions() as session:
        return open_campaign(session, steward.settings, people["owner"], **options)


def _review(steward: Steward, review_id: int) -> Review:
    with steward.sessions() as session:
        review = session.get_one(Review, review_id)
        session.expunge(review)
        return review


def _audit(steward: Steward, action: str | None = None) -> int:
    with steward.sessions() as session:
        return audit_count(session, action)


def test_request_shows_evidence_and_buttons(
    bot: Bot, steward: Steward, slack_api: SlackApi, people: dict[str, Person]
) -> None:
    with steward.sessions() as session:
        crm = BusinessEntity(type=EntityType.APPLICATION, key="crm", name="CRM")
        session.add(crm)
        session.commit()
    reviews = _open(
        steward,
        people,
        scope_summary="read:invoices write:reports",
        tier_reason="policy AdministratorAccess",
        never_used=True,
    )
    with steward.sessions() as session:
        first = session.get_one(Review, reviews[0])
        identity = session.get_one(Identity, first.identity_id)
        identity.entities.append(session.scalars(sa.select(BusinessEntity)).one())
        session.commit()
        due = first.due_at

    [message] = deliver(bot, slack_api)

    assert message.channel == "D" + OWNER_ID
    check_blocks(message.blocks)
    text = message_text(message)
    for fact in (
        identity.name,
        identity.kind,
        "vault-main",
        "read:invoices write:reports",
        "policy AdministratorAccess",
        "never used",
        "application crm (CRM)",
        show_date(due, PARIS),
    ):
        assert fact in text
    for review_id in reviews:
        for action in (
            Action.REVIEW_CERTIFY,
            Action.REVIEW_REDUCE_SCOPE,
            Action.REVIEW_REVOKE,
            Action.REVIEW_NOT_MINE,
        ):
            assert button(message, action, str(review_id))["value"] == str(review_id)
    privileged_revoke = button(message, Action.REVIEW_REVOKE, str(reviews[0]))
    standard_revoke = button(message, Action.REVIEW_REVOKE, str(reviews[1]))
    assert "confirm" in privileged_revoke
    assert "confirm" not in standard_revoke
    certify_all = button(message, Action.REVIEW_CERTIFY_ALL)
    assert certify_all["value"] == f"{reviews[1]},{reviews[2]}"
    assert "confirm" in certify_all


def test_certify_updates_message_in_place(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people)
    [message] = deliver(bot, slack_api)
    events_before = _audit(steward)

    response = click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.REVIEW_CERTIFY,
        value=str(reviews[1]),
    )
    listeners.settle()

    assert response.status == 200
    review = _review(steward, reviews[1])
    assert review.decision is Decision.CERTIFY
    assert review.decided_by == "owner@example.com"
    assert review.decided_at is not None
    # The decision, the identity's certification and nothing else.
    assert _audit(steward) == events_before + 2
    assert len(slack_api.messages) == 1
    assert message.edits == 1
    text = message_text(message)
    decided = show_time(review.decided_at, PARIS)
    assert f"*Certified* by Olive Owner at {decided}" in text
    assert decided != show_time(review.decided_at, "UTC")
    certify_values = [
        element["value"]
        for element in elements(message)
        if element["action_id"] == Action.REVIEW_CERTIFY
    ]
    assert certify_values == [str(reviews[0]), str(reviews[2])]
    assert button(message, Action.REVIEW_CERTIFY_ALL)["value"] == str(reviews[2])
    check_blocks(message.blocks)


def test_second_click_changes_nothing(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people)
    [message] = deliver(bot, slack_api)
    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.REVIEW_REVOKE,
        value=str(reviews[1]),
    )
    listeners.settle()
    events_before = _audit(steward)
    with steward.sessions() as session:
        remediations_before = session.scalar(
            sa.select(sa.func.count()).select_from(Remediation)
        )

    for action in (Action.REVIEW_CERTIFY, Action.REVIEW_REVOKE):
        response = click(
            server,
            slack_api,
            message,
            user=OWNER_ID,
            action=action,
            value=str(reviews[1]),
        )
        assert response.status == 200
    listeners.settle()

    review = _review(steward, reviews[1])
    assert review.decision is Decision.REVOKE
    assert _audit(steward) == events_before
    with steward.sessions() as session:
        assert (
            session.scalar(sa.select(sa.func.count()).select_from(Remediation))
            == remediations_before
        )
    assert message.edits == 1
    assert review.decided_at is not None
    expected = (
        f"Already decided by Olive Owner at {show_time(review.decided_at, PARIS)}: "
        "revocation requested. Nothing was changed."
    )
    assert [answer["text"] for answer in slack_api.responses] == [expected] * 2
    assert all(answer["response_type"] == "ephemeral" for answer in slack_api.responses)


def test_outsiders_refused(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people)
    [message] = deliver(bot, slack_api)
    slack_api.add_user("U0NOBODY", "nobody@example.com")
    events_before = _audit(steward)

    for user in (STRANGER_ID, "U0NOBODY"):
        for action in (
            Action.REVIEW_CERTIFY,
            Action.REVIEW_REVOKE,
            Action.REVIEW_NOT_MINE,
        ):
            response = click(
                server,
                slack_api,
                message,
                user=user,
                action=action,
                value=str(reviews[1]),
            )
            assert response.status == 200
        response = click(
            server,
            slack_api,
            message,
            user=user,
            action=Action.REVIEW_CERTIFY_ALL,
            value=f"{reviews[1]},{reviews[2]}",
        )
    listeners.settle()

    assert _audit(steward) == events_before
    for review_id in reviews:
        assert _review(steward, review_id).status is ReviewStatus.PENDING
    assert message.edits == 0
    assert slack_api.opened_views == []
    texts = [answer["text"] for answer in slack_api.responses]
    assert len(texts) == 8
    assert sum("stranger@example.com may not decide review" in t for t in texts) == 3
    assert sum("not in Steward's people directory" in t for t in texts) == 4
    assert all(answer["response_type"] == "ephemeral" for answer in slack_api.responses)


def test_backup_owner_and_admin_decide(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people, backup=people["backup"])
    [message] = deliver(bot, slack_api)

    click(
        server,
        slack_api,
        message,
        user=BACKUP_ID,
        action=Action.REVIEW_REDUCE_SCOPE,
        value=str(reviews[1]),
    )
    click(
        server,
        slack_api,
        message,
        user="U0ADMIN",
        action=Action.REVIEW_CERTIFY,
        value=str(reviews[2]),
    )
    listeners.settle()

    assert _review(steward, reviews[1]).decided_by == "backup@example.com"
    assert _review(steward, reviews[1]).decision is Decision.REDUCE_SCOPE
    assert _review(steward, reviews[2]).decided_by == "security@example.com"
    assert "Kept with a scope reduction* by Bea Backup" in message_text(message)


def test_reduce_scope_then_confirm(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people, privileged=0, standard=1)
    [message] = deliver(bot, slack_api)
    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.REVIEW_REDUCE_SCOPE,
        value=str(reviews[0]),
    )
    listeners.settle()
    with steward.sessions() as session:
        reduction = session.scalars(
            sa.select(Remediation).where(
                Remediation.kind == RemediationKind.SCOPE_REDUCTION
            )
        ).one()
    assert reduction.status is RemediationStatus.OPEN
    assert (
        f"Reduce the scope by {show_date(reduction.deadline, PARIS)}"
        in message_text(message)
    )
    confirm = button(message, Action.SCOPE_REDUCTION_CONFIRM)
    assert confirm["value"] == str(reduction.id)

    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.SCOPE_REDUCTION_CONFIRM,
        value=confirm["value"],
    )
    listeners.settle()

    with steward.sessions() as session:
        confirmed = session.get_one(Remediation, reduction.id)
        identity = session.get_one(Identity, confirmed.identity_id)
        assert confirmed.status is RemediationStatus.SUCCEEDED
        assert identity.state is IdentityState.OWNED
        assert identity.certified_until is not None
    assert message.edits == 2
    assert "Scope reduction confirmed" in message_text(message)
    assert [e["action_id"] for e in elements(message)] == []


def test_certify_all_skips_privileged(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people, privileged=2, standard=3)
    [message] = deliver(bot, slack_api)
    # The value lists the page's standard reviews; a tampered value that adds a
    # privileged review still certifies standard reviews only.
    value = ",".join(str(review_id) for review_id in reviews)

    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.REVIEW_CERTIFY_ALL,
        value=value,
    )
    listeners.settle()

    statuses = [_review(steward, review_id).status for review_id in reviews]
    assert statuses == [ReviewStatus.PENDING] * 2 + [ReviewStatus.DECIDED] * 3
    assert _audit(steward, "review.decided") == 3
    assert slack_api.responses[-1]["text"] == "Certified 3 standard-tier identities."
    assert message.edits == 1
    actions = {e["action_id"] for e in elements(message)}
    assert Action.REVIEW_CERTIFY_ALL not in actions
    assert [
        e["value"] for e in elements(message) if e["action_id"] == Action.REVIEW_CERTIFY
    ] == [str(reviews[0]), str(reviews[1])]


def test_not_mine_hands_review_over(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people, privileged=0, standard=2)
    [message] = deliver(bot, slack_api)

    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.REVIEW_NOT_MINE,
        value=str(reviews[0]),
    )
    listeners.settle()

    [modal] = slack_api.opened_views
    assert modal["callback_id"] == Callback.REVIEW_REASSIGN
    [picker] = [block for block in modal["blocks"] if block["type"] == "input"]
    assert picker["element"]["type"] == "users_select"
    events_before = _audit(steward)

    response = submit_view(
        server,
        user=OWNER_ID,
        callback_id=Callback.REVIEW_REASSIGN,
        private_metadata=modal["private_metadata"],
        values={
            "reviewer": {"user": {"type": "users_select", "selected_user": PICKED_ID}}
        },
    )
    listeners.settle()

    assert response.status == 200
    assert "errors" not in response.body
    review = _review(steward, reviews[0])
    assert review.reviewer_id == people["picked"].id
    assert review.status is ReviewStatus.PENDING
    assert _audit(steward) == events_before + 1
    assert _audit(steward, "review.reassigned") == 1
    assert message.edits == 1
    assert "Handed to Pia Picked" in message_text(message)
    assert [
        e["value"] for e in elements(message) if e["action_id"] == Action.REVIEW_CERTIFY
    ] == [str(reviews[1])]

    [handed] = deliver(bot, slack_api)
    assert handed.channel == "D" + PICKED_ID
    assert "This review was handed to you" in message_text(handed)
    assert button(handed, Action.REVIEW_CERTIFY)["value"] == str(reviews[0])
    click(
        server,
        slack_api,
        handed,
        user=PICKED_ID,
        action=Action.REVIEW_CERTIFY,
        value=str(reviews[0]),
    )
    listeners.settle()
    assert _review(steward, reviews[0]).decided_by == "picked@example.com"
    assert handed.edits == 1


def test_not_mine_rejects_bad_picks(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people, privileged=0, standard=1)
    [message] = deliver(bot, slack_api)
    slack_api.add_user("U0NOBODY", "nobody@example.com")
    slack_api.add_user("U0GONE", "gone@example.com", deleted=True)
    no_email = slack_api.add_user("U0NOEMAIL", "hidden@example.com")
    del no_email["profile"]["email"]
    with steward.sessions() as session:
        picked = session.get_one(Person, people["picked"].id)
        picked.active = False
        session.commit()
    metadata = json.dumps(
        {"review_id": reviews[0], "channel": message.channel, "ts": message.ts}
    )
    events_before = _audit(steward)

    expected = {
        "U0GUEST": "Guests cannot review identities",
        "U0NOBODY": "not in Steward's people directory",
        "U0MISSING": "not in Steward's people directory",
        "U0NOEMAIL": "not in Steward's people directory",
        "U0GONE": "deactivated",
        PICKED_ID: "picked@example.com is inactive",
    }
    for user_id, error in expected.items():
        response = submit_view(
            server,
            user=OWNER_ID,
            callback_id=Callback.REVIEW_REASSIGN,
            private_metadata=metadata,
            values={
                "reviewer": {"user": {"type": "users_select", "selected_user": user_id}}
            },
        )
        answer = json.loads(response.body)
        assert answer["response_action"] == "errors"
        assert error in answer["errors"]["reviewer"]
    listeners.settle()

    assert _audit(steward) == events_before
    assert _review(steward, reviews[0]).reviewer_id == people["owner"].id
    assert message.edits == 0


def _unicode_digits(number: int, zero: str) -> str:
    return "".join(chr(ord(zero) + int(digit)) for digit in str(number))


def test_certify_rejects_non_ascii_and_huge_ids(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    reviews = _open(steward, people)
    [message] = deliver(bot, slack_api)
    events_before = _audit(steward)
    values = [
        _unicode_digits(reviews[0], "\uff10"),  # fullwidth digits
        _unicode_digits(reviews[0], "\u0660"),  # Arabic-Indic digits
        "99999999999999999999999",
        "1" * 19,
    ]
    for value in values:
        response = click(
            server,
            slack_api,
            message,
            user=OWNER_ID,
            action=Action.REVIEW_CERTIFY,
            value=value,
        )
        listeners.settle()

        assert response.status == 200
        assert "no valid id" in slack_api.responses[-1]["text"]
    assert _review(steward, reviews[0]).status is ReviewStatus.PENDING
    assert _audit(steward) == events_before


def test_click_by_user_unknown_to_slack(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reviews = _open(steward, people)
    [message] = deliver(bot, slack_api)
    no_email = slack_api.add_user("U0NOEMAIL", "hidden@example.com")
    del no_email["profile"]["email"]
    events_before = _audit(steward)

    # U0MISSING is not a user of the workspace: users.info fails with
    # user_not_found.
    for user in ("U0MISSING", "U0NOEMAIL"):
        response = click(
            server,
            slack_api,
            message,
            user=user,
            action=Action.REVIEW_CERTIFY,
            value=str(reviews[0]),
        )
        listeners.settle()

        assert response.status == 200
        text = slack_api.responses[-1]["text"]
        assert "is not in Steward's people directory" in text
        assert "Something went wrong" not in text
    assert _review(steward, reviews[0]).status is ReviewStatus.PENDING
    assert _audit(steward) == events_before
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
