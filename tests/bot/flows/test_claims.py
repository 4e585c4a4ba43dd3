"""Orphan posts in Slack: Claim, Not mine, and the security team's approval."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa

from bot.actions import Action
from bot.blocks import check_blocks
from bot.context import Bot
from bot.local_api import Message, SlackApi
from bot.messages.claims import ORPHANS_PER_PAGE
from governance.app import Steward
from governance.audit.service import Actor
from governance.campaign.service import start_campaign
from governance.claim.models import Claim, ClaimStatus
from governance.clock import utcnow
from governance.delivery.models import SentMessage
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import Remediation
from governance.remediation.service import queue_notification
from tests.bot.conftest import (
    ADMIN_ID,
    GUEST_ID,
    ORPHAN_CHANNEL,
    OWNER_ID,
    SECURITY_CHANNEL,
    STRANGER_ID,
    RunningServer,
)
from tests.bot.flows.support import (
    ADMIN,
    TrackingExecutor,
    audit_count,
    button,
    click,
    deliver,
    elements,
    message_text,
)
from tests.factories import make_identity


def _post_orphan(
    bot: Bot, steward: Steward, slack_api: SlackApi, tier: RiskTier
) -> tuple[int, Message]:
    with steward.sessions() as session:
        identity = make_identity(
            session,
            state=IdentityState.ORPHANED,
            tier=tier,
            orphaned_at=utcnow(),
            claim_deadline=utcnow() + timedelta(days=14),
            name="billing-exporter",
        )
        queue_notification(
            session,
            actor=Actor.system("test"),
            dedupe_key=f"orphan:{identity.id}",
            recipient=None,
            template="orphan_claim",
            context={"identity_id": identity.id},
            identity_id=identity.id,
        )
        session.commit()
        identity_id = identity.id
    [post] = deliver(bot, slack_api)
    assert post.channel == ORPHAN_CHANNEL
    return identity_id, post


def _identity(steward: Steward, identity_id: int) -> Identity:
    with steward.sessions() as session:
        identity = session.get_one(Identity, identity_id)
        session.expunge(identity)
        return identity


def _audit(steward: Steward, action: str | None = None) -> int:
    with steward.sessions() as session:
        return audit_count(session, action)


def test_claim_standard_orphan(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_id, post = _post_orphan(bot, steward, slack_api, RiskTier.STANDARD)
    check_blocks(post.blocks)
    assert "billing-exporter" in message_text(post)
    claim_button = button(post, Action.ORPHAN_CLAIM)
    assert claim_button["value"] == str(identity_id)
    assert button(post, Action.ORPHAN_NOT_MINE)["value"] == str(identity_id)

    click(
        server,
        slack_api,
        post,
        user=OWNER_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(identity_id),
    )
    listeners.settle()

    identity = _identity(steward, identity_id)
    assert identity.state is IdentityState.OWNED
    assert identity.owner_id == people["owner"].id
    assert post.edits == 1
    assert "*Claimed* by Olive Owner" in message_text(post)
    assert elements(post) == []
    assert slack_api.responses[-1]["text"] == "You now own *billing-exporter*."


def test_guest_cannot_claim(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_id, post = _post_orphan(bot, steward, slack_api, RiskTier.STANDARD)
    events_before = _audit(steward)

    response = click(
        server,
        slack_api,
        post,
        user=GUEST_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(identity_id),
    )
    listeners.settle()

    assert response.status == 200
    assert _identity(steward, identity_id).state is IdentityState.ORPHANED
    assert _audit(steward) == events_before
    with steward.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Claim)) == 0
    assert post.edits == 0
    [answer] = slack_api.responses
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Guests cannot claim identities.")


def test_not_mine_recorded_once(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_id, post = _post_orphan(bot, steward, slack_api, RiskTier.STANDARD)

    for user in (STRANGER_ID, STRANGER_ID, OWNER_ID):
        click(
            server,
            slack_api,
            post,
            user=user,
            action=Action.ORPHAN_NOT_MINE,
            value=str(identity_id),
        )
    listeners.settle()

    assert _audit(steward, "claim.disowned") == 2
    assert _identity(steward, identity_id).state is IdentityState.ORPHANED
    assert post.edits == 0
    assert [answer["text"] for answer in slack_api.responses] == [
        "Noted: *billing-exporter* is not yours. It stays open to claims."
    ] * 3


def test_privileged_claim_waits_for_admin(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_id, post = _post_orphan(bot, steward, slack_api, RiskTier.PRIVILEGED)
    click(
        server,
        slack_api,
        post,
        user=OWNER_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(identity_id),
    )
    listeners.settle()

    assert _identity(steward, identity_id).state is IdentityState.ORPHANED
    assert "a security admin must approve" in message_text(post)
    assert elements(post) == []
    assert "waits for a security admin" in slack_api.responses[-1]["text"]

    [approval] = deliver(bot, slack_api)
    assert approval.channel == SECURITY_CHANNEL
    check_blocks(approval.blocks)
    with steward.sessions() as session:
        claim = session.scalars(sa.select(Claim)).one()
    assert button(approval, Action.CLAIM_APPROVE)["value"] == str(claim.id)
    assert "Olive Owner claims a privileged identity" in message_text(approval)

    # Only a security admin may decide, and nothing changes otherwise.
    events_before = _audit(steward)
    click(
        server,
        slack_api,
        approval,
        user=STRANGER_ID,
        action=Action.CLAIM_APPROVE,
        value=str(claim.id),
    )
    listeners.settle()
    assert _audit(steward) == events_before
    assert "only security admins may" in slack_api.responses[-1]["text"]

    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.CLAIM_APPROVE,
        value=str(claim.id),
    )
    listeners.settle()

    identity = _identity(steward, identity_id)
    assert identity.state is IdentityState.OWNED
    assert identity.owner_id == people["owner"].id
    assert "*Approved* by Sam Security" in message_text(approval)
    assert elements(approval) == []
    assert "*Claimed* by Olive Owner" in message_text(post)
    assert post.edits == 2

    [decided] = deliver(bot, slack_api)
    assert decided.channel == "D" + OWNER_ID
    assert "was decided. You now own it." in message_text(decided)

    # A second click gets the first decision back and changes nothing.
    events_before = _audit(steward)
    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.CLAIM_REJECT,
        value=str(claim.id),
    )
    listeners.settle()
    assert _audit(steward) == events_before
    assert (
        "was already approved by security@example.com"
        in (slack_api.responses[-1]["text"])
    )
    with steward.sessions() as session:
        assert session.get_one(Claim, claim.id).status is ClaimStatus.APPROVED
        templates = [
            row.payload["template"] for row in session.scalars(sa.select(Remediation))
        ]
    assert templates.count("claim_decided") == 1
    assert templates.count("claim_approval") == 1


def _post_campaign_orphans(
    bot: Bot, steward: Steward, slack_api: SlackApi, count: int
) -> tuple[list[int], list[Message]]:
    """Open a campaign over `count` new orphans; return their ids and the pages.

    Every seventh orphan is privileged.
    """
    due = utcnow() - timedelta(days=1)
    with steward.sessions() as session:
        identity_ids = [
            make_identity(
                session,
                state=IdentityState.ORPHANED,
                tier=RiskTier.PRIVILEGED if number % 7 == 6 else RiskTier.STANDARD,
                orphaned_at=utcnow(),
                claim_deadline=utcnow() + timedelta(days=14),
                review_due_at=due,
                name=f"orphan-{number:03d}",
            ).id
            for number in range(count)
        ]
        session.commit()
        start_campaign(session, actor=ADMIN, settings=bot.settings)
        session.commit()
    return identity_ids, deliver(bot, slack_api)


def _claim_values(message: Message) -> list[str]:
    return [
        element["value"]
        for element in elements(message)
        if element["action_id"] == Action.ORPHAN_CLAIM
    ]


def test_campaign_orphans_posted_in_pages(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_ids, pages = _post_campaign_orphans(bot, steward, slack_api, 67)

    assert len(pages) == math.ceil(67 / ORPHANS_PER_PAGE) == 7
    for number, page in enumerate(pages, start=1):
        check_blocks(page.blocks)
        assert page.channel == ORPHAN_CHANNEL
        listed = identity_ids[(number - 1) * 10 : number * 10]
        assert _claim_values(page) == [str(value) for value in listed]
        assert f"Page {number} of 7" in message_text(page)
    assert len(_claim_values(pages[-1])) == 7
    with steward.sessions() as session:
        keys = session.scalars(
            sa.select(SentMessage.key).order_by(SentMessage.id)
        ).all()
    assert len(keys) == 7
    assert len(set(keys)) == 7

    # The 25th orphan is on page 3, and claiming it edits page 3 only.
    target = identity_ids[24]
    page_three = pages[2]
    click(
        server,
        slack_api,
        page_three,
        user=OWNER_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(target),
    )
    listeners.settle()

    assert _identity(steward, target).owner_id == people["owner"].id
    assert [page.edits for page in pages] == [0, 0, 1, 0, 0, 0, 0]
    assert "*Claimed* by Olive Owner" in message_text(page_three)
    check_blocks(page_three.blocks)
    remaining = [str(value) for value in identity_ids[20:30] if value != target]
    assert _claim_values(page_three) == remaining
    assert slack_api.responses[-1]["text"] == f"You now own *orphan-{24:03d}*."


def test_campaign_orphan_double_claim(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_ids, pages = _post_campaign_orphans(bot, steward, slack_api, 12)
    assert len(pages) == 2
    target = identity_ids[11]

    for user in (OWNER_ID, STRANGER_ID, OWNER_ID):
        click(
            server,
            slack_api,
            pages[1],
            user=user,
            action=Action.ORPHAN_CLAIM,
            value=str(target),
        )
    listeners.settle()

    assert _identity(steward, target).owner_id == people["owner"].id
    with steward.sessions() as session:
        claims = session.scalars(sa.select(Claim)).all()
    assert [claim.identity_id for claim in claims] == [target]
    assert _audit(steward, "claim.requested") == 1
    answers = [answer["text"] for answer in slack_api.responses]
    assert answers.count("You now own *orphan-011*.") == 1
    assert sum("only orphans can be claimed" in answer for answer in answers) == 2
    assert pages[0].edits == 0


def test_campaign_privileged_orphan_approval(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_ids, pages = _post_campaign_orphans(bot, steward, slack_api, 20)
    # Orphan 13 (index 13 % 7 == 6) is privileged and sits on page 2.
    target = identity_ids[13]
    click(
        server,
        slack_api,
        pages[1],
        user=OWNER_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(target),
    )
    listeners.settle()
    assert _identity(steward, target).state is IdentityState.ORPHANED
    assert "a security admin must approve" in message_text(pages[1])
    assert str(target) not in _claim_values(pages[1])

    [approval] = deliver(bot, slack_api)
    with steward.sessions() as session:
        claim = session.scalars(sa.select(Claim)).one()
    click(
        server,
        slack_api,
        approval,
        user=ADMIN_ID,
        action=Action.CLAIM_APPROVE,
        value=str(claim.id),
    )
    listeners.settle()

    assert _identity(steward, target).owner_id == people["owner"].id
    assert [page.edits for page in pages] == [0, 2]
    assert "*Claimed* by Olive Owner" in message_text(pages[1])


def test_guest_cannot_claim_campaign_orphan(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    identity_ids, pages = _post_campaign_orphans(bot, steward, slack_api, 3)
    events_before = _audit(steward)

    click(
        server,
        slack_api,
        pages[0],
        user=GUEST_ID,
        action=Action.ORPHAN_CLAIM,
        value=str(identity_ids[0]),
    )
    listeners.settle()

    assert _identity(steward, identity_ids[0]).state is IdentityState.ORPHANED
    assert _audit(steward) == events_before
    assert pages[0].edits == 0
    assert slack_api.responses[-1]["text"].startswith("Guests cannot claim")
