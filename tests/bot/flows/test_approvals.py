"""Approvals in the security channel, and owners confirming scope reductions."""

from __future__ import annotations

import sqlalchemy as sa

from bot.actions import Action
from bot.blocks import check_blocks
from bot.context import Bot
from bot.local_api import SlackApi
from governance.app import Steward
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.business_event.models import BusinessEvent, EventStatus, EventType
from governance.business_event.service import receive_event
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.service import open_scope_reduction, queue_notification
from tests.bot.conftest import (
    ADMIN_ID,
    OWNER_ID,
    SECURITY_CHANNEL,
    STRANGER_ID,
    RunningServer,
)
from tests.bot.flows.support import (
    TrackingExecutor,
    audit_count,
    button,
    click,
    deliver,
    elements,
    message_text,
    open_campaign,
)
from tests.factories import make_identity


def _audit(steward: Steward) -> int:
    with steward.sessions() as session:
        return audit_count(session)


def _revocation(steward: Steward) -> Remediation:
    with steward.sessions() as session:
        row = session.scalars(
            sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
        ).one()
        session.expunge(row)
        return row


def test_privileged_revocation_approved(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    with steward.sessions() as session:
        [review_id] = open_campaign(
            session, steward.settings, people["owner"], privileged=1, standard=0
        )
    [request] = deliver(bot, slack_api)
    click(
        server,
        slack_api,
        request,
        user=OWNER_ID,
        action=Action.REVIEW_REVOKE,
        value=str(review_id),
    )
    listeners.settle()
    assert "Waiting for a security admin's approval" in message_text(request)
    remediation = _revocation(steward)
    assert remediation.status is RemediationStatus.AWAITING_APPROVAL

    [approval] = deliver(bot, slack_api)
    assert approval.channel == SECURITY_CHANNEL
    check_blocks(approval.blocks)
    assert "Requested by Olive Owner" in message_text(approval)
    approve = button(approval, Action.REVOCATION_APPROVE)
    assert approve["value"] == str(remediation.id)
    assert "confirm" in approve

    events_before = _audit(steward)
    click(
        server,
        slack_api,
        approval,
        user=OWNER_ID,
        action=Action.REVOCATION_APPROVE,
        value=str(remediation.id),
    )
    listeners.settle()
    assert _audit(steward) == events_before
    assert _revocation(steward).status is RemediationStatus.AWAITING_APPROVAL
    assert "only security admins may" in slack_api.responses[-1]["text"]

    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.REVOCATION_APPROVE,
        value=str(remediation.id),
    )
    listeners.settle()

    decided = _revocation(steward)
    assert decided.status is RemediationStatus.PENDING
    assert decided.approved_by == "security@example.com"
    assert "*Approved* by Sam Security" in message_text(approval)
    assert elements(approval) == []
    with steward.sessions() as session:
        identity = session.get_one(Identity, decided.identity_id)
        assert identity.state is IdentityState.REVOCATION_PENDING

    [told] = deliver(bot, slack_api)
    assert told.channel == "D" + OWNER_ID
    assert "that you requested was decided" in message_text(told)
    assert "*Approved* by Sam Security" in message_text(told)


def test_admin_cannot_approve_own_revocation(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    with steward.sessions() as session:
        [review_id] = open_campaign(
            session, steward.settings, people["owner"], privileged=1, standard=0
        )
    [request] = deliver(bot, slack_api)
    click(
        server,
        slack_api,
        request,
        user=ADMIN_ID,
        action=Action.REVIEW_REVOKE,
        value=str(review_id),
    )
    listeners.settle()
    [approval] = deliver(bot, slack_api)
    remediation = _revocation(steward)

    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.REVOCATION_APPROVE,
        value=str(remediation.id),
    )
    listeners.settle()
    assert _revocation(steward).status is RemediationStatus.AWAITING_APPROVAL
    assert "another security admin must" in slack_api.responses[-1]["text"]

    # Rejecting one's own request is allowed.
    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.REVOCATION_REJECT,
        value=str(remediation.id),
    )
    listeners.settle()
    assert _revocation(steward).status is RemediationStatus.REJECTED
    assert "*Rejected* by Sam Security" in message_text(approval)


def test_large_event_approved_from_slack(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    with steward.sessions() as session:
        project = BusinessEntity(type=EntityType.PROJECT, key="apollo", name="Apollo")
        session.add(project)
        for number in range(30):
            identity = make_identity(
                session, owner=people["owner"], name=f"apollo-{number}"
            )
            identity.entities.append(project)
        outcome = receive_event(
            session,
            event_id="CHG0042",
            event_type=EventType.PROJECT_CLOSED,
            key="apollo",
            actor=Actor.system("itsm"),
            settings=steward.settings,
        )
        session.commit()
        assert outcome.event.status is EventStatus.AWAITING_APPROVAL
        event_row_id = outcome.event.id
        templates = [
            row.payload.get("template")
            for row in session.scalars(
                sa.select(Remediation).where(Remediation.kind == RemediationKind.NOTIFY)
            )
        ]
    # One question for the whole event, none per identity.
    assert templates == ["event_approval"]

    [approval] = deliver(bot, slack_api)
    assert approval.channel == SECURITY_CHANNEL
    check_blocks(approval.blocks)
    text = message_text(approval)
    assert "project.closed: project apollo* (Apollo)" in text
    assert "would revoke 30 identities (0 privileged)" in text
    assert "and 15 more" in text
    assert button(approval, Action.EVENT_APPROVE)["value"] == str(event_row_id)

    click(
        server,
        slack_api,
        approval,
        user=STRANGER_ID,
        action=Action.EVENT_APPROVE,
        value=str(event_row_id),
    )
    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.EVENT_APPROVE,
        value=str(event_row_id),
    )
    listeners.settle()

    with steward.sessions() as session:
        event = session.get_one(BusinessEvent, event_row_id)
        assert event.status is EventStatus.APPLIED
        assert event.decided_by == "security@example.com"
        statuses = set(
            session.scalars(
                sa.select(Remediation.status).where(
                    Remediation.kind == RemediationKind.REVOKE
                )
            )
        )
        assert statuses == {RemediationStatus.PENDING}
    texts = [answer["text"] for answer in slack_api.responses]
    assert any("only security admins may" in text for text in texts)
    assert "30 revocations queued." in texts
    assert "*Approved* by Sam Security" in message_text(approval)
    assert elements(approval) == []


def test_scope_reduction_confirmed_from_reminder(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    with steward.sessions() as session:
        identity = make_identity(
            session, owner=people["owner"], tier=RiskTier.STANDARD, name="etl-writer"
        )
        reduction = open_scope_reduction(
            session,
            identity,
            actor=Actor.person("owner@example.com"),
            reason="write access is not needed",
            deadline_days=30,
        )
        queue_notification(
            session,
            actor=Actor.system("scheduler"),
            dedupe_key=f"reduction:{reduction.id}:due",
            recipient="owner@example.com",
            template="scope_reduction_due",
            context={"remediation_id": reduction.id},
            identity_id=identity.id,
        )
        session.commit()
        reduction_id = reduction.id
    [message] = deliver(bot, slack_api)
    assert message.channel == "D" + OWNER_ID
    check_blocks(message.blocks)
    assert "Reduce the scope of *etl-writer*" in message_text(message)

    click(
        server,
        slack_api,
        message,
        user=STRANGER_ID,
        action=Action.SCOPE_REDUCTION_CONFIRM,
        value=str(reduction_id),
    )
    click(
        server,
        slack_api,
        message,
        user=OWNER_ID,
        action=Action.SCOPE_REDUCTION_CONFIRM,
        value=str(reduction_id),
    )
    listeners.settle()

    with steward.sessions() as session:
        assert (
            session.get_one(Remediation, reduction_id).status
            is RemediationStatus.SUCCEEDED
        )
    texts = [answer["text"] for answer in slack_api.responses]
    assert any("may not confirm remediation" in text for text in texts)
    assert "*Confirmed* at" in message_text(message)
    assert elements(message) == []
    assert message.edits == 1
