"""Every message stays within Block Kit's limits with a worst-case inventory.

One owner has 320 identities whose stored texts are as long as the columns
allow (unbounded ones several thousand characters) and full of mrkdwn markup.
Every message posted or edited must pass `check_blocks`, page its lists, and
carry only ids in its button values.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.blocks import MAX_FALLBACK_TEXT, MAX_MESSAGE_BLOCKS, check_blocks
from bot.context import Bot
from bot.local_api import SlackApi
from bot.messages.reviews import PER_PAGE
from governance.app import Steward
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.business_event.models import EventType
from governance.business_event.service import receive_event
from governance.campaign.models import Review
from governance.campaign.service import start_campaign
from governance.claim.service import claim_identity
from governance.clock import utcnow
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.service import queue_notification
from tests.bot.conftest import ADMIN_ID, OWNER_ID, RunningServer
from tests.bot.flows.support import (
    ADMIN,
    TrackingExecutor,
    button,
    click,
    deliver,
    elements,
)

IDENTITIES = 320
IDS_ONLY = re.compile(r"^\d+(,\d+)*$")
MARKUP = "<!channel> *bold* _x_ &amp; <https://example.com|link> "


def _long(length: int) -> str:
    return (MARKUP * (length // len(MARKUP) + 1))[:length]


def _seed(session: Session, owner: Person) -> None:
    due = utcnow() - timedelta(days=1)
    entities = [
        BusinessEntity(
            type=EntityType.PROJECT, key=f"p{n}-" + "k" * 190, name=_long(300)
        )
        for n in range(8)
    ]
    session.add_all(entities)
    session.flush()
    for number in range(IDENTITIES):
        identity = Identity(
            source="s" * 100,
            kind="k" * 64,
            external_id=f"{number}-" + "x" * 500,
            name=f"{number} " + _long(500),
            description=_long(6000),
            tier=RiskTier.PRIVILEGED if number % 10 == 0 else RiskTier.STANDARD,
            detected_tier=RiskTier.STANDARD,
            tier_reason=_long(4000),
            scope_summary=_long(8000),
            state=IdentityState.OWNED,
            owner=owner,
            review_due_at=due,
            created_at=due,
            last_used_at=due,
        )
        identity.entities.extend(entities)
        session.add(identity)
    session.flush()


def _check_message(blocks: list[dict[str, Any]], text: str) -> None:
    check_blocks(blocks)
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert len(text) <= MAX_FALLBACK_TEXT
    assert "<!channel>" not in text
    for block in blocks:
        raw = json.dumps(block)
        # User text is escaped, so it can neither mention nor link.
        assert "<!channel>" not in raw
        assert "<https://example.com" not in raw
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("type") == "button":
                assert IDS_ONLY.match(element["value"]), element["value"]


def test_worst_case_inventory_within_limits(
    bot: Bot,
    steward: Steward,
    slack_api: SlackApi,
    server: RunningServer,
    listeners: TrackingExecutor,
    people: dict[str, Person],
) -> None:
    owner = people["owner"]
    with steward.sessions() as session:
        _seed(session, session.get_one(Person, owner.id))
        session.commit()
        campaign = start_campaign(session, actor=ADMIN, settings=steward.settings)
        session.commit()
        review_ids = list(
            session.scalars(
                sa.select(Review.id)
                .where(Review.campaign_id == campaign.id)
                .order_by(Review.id)
            )
        )
    pages = deliver(bot, slack_api)

    assert len(pages) == -(-IDENTITIES // PER_PAGE)
    listed = [
        int(element["value"])
        for page in pages
        for element in elements(page)
        if element["action_id"] == Action.REVIEW_CERTIFY
    ]
    assert listed == review_ids

    first = pages[0]
    standard = button(first, Action.REVIEW_CERTIFY_ALL)["value"].split(",")
    click(
        server,
        slack_api,
        first,
        user=OWNER_ID,
        action=Action.REVIEW_REVOKE,
        value=str(review_ids[0]),
    )
    click(
        server,
        slack_api,
        pages[1],
        user=OWNER_ID,
        action=Action.REVIEW_CERTIFY_ALL,
        value=button(pages[1], Action.REVIEW_CERTIFY_ALL)["value"],
    )
    click(
        server,
        slack_api,
        first,
        user=OWNER_ID,
        action=Action.REVIEW_NOT_MINE,
        value=standard[0],
    )
    listeners.settle()

    with steward.sessions() as session:
        _queue_other_messages(session, steward, review_ids, campaign.id, owner)
        session.commit()
    deliver(bot, slack_api)
    # The revocation approval from the first click is posted by now.
    approvals = [
        message
        for message in slack_api.messages
        if any(e["action_id"] == Action.REVOCATION_APPROVE for e in elements(message))
    ]
    assert len(approvals) == 1
    click(
        server,
        slack_api,
        approvals[0],
        user=ADMIN_ID,
        action=Action.REVOCATION_REJECT,
        value=button(approvals[0], Action.REVOCATION_REJECT)["value"],
    )
    listeners.settle()

    headlines = sorted({message.text.split(":")[0] for message in slack_api.messages})
    # Review pages, the revocation approval, a reminder, an escalation, an
    # orphan post, a claim approval and an event approval.
    assert len(slack_api.messages) == len(pages) + 6, headlines
    for message in slack_api.messages:
        _check_message(message.blocks, message.text)
    updates = slack_api.calls_to("chat.update")
    assert len(updates) >= 3
    for call in updates:
        _check_message(_decoded(call.params["blocks"]), call.params["text"])
    [modal] = slack_api.opened_views
    check_blocks(modal["blocks"], limit=100)
    assert len(modal["private_metadata"]) <= 3000


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _queue_other_messages(
    session: Session,
    steward: Steward,
    review_ids: list[int],
    campaign_id: int,
    owner: Person,
) -> None:
    """Queue a reminder, an escalation, an orphan post, a claim and an event."""
    system = Actor.system("test")
    queue_notification(
        session,
        actor=system,
        dedupe_key="reminder",
        recipient=owner.email,
        template="review_reminder",
        context={"campaign_id": campaign_id, "reviewer_id": owner.id, "round": 1},
    )
    queue_notification(
        session,
        actor=system,
        dedupe_key="escalated",
        recipient=None,
        template="review_escalated",
        context={
            "review_id": review_ids[-1],
            "campaign_id": campaign_id,
            "from_person_id": owner.id,
            "to_person_id": None,
        },
    )
    orphan = session.scalars(
        sa.select(Identity).where(Identity.tier == RiskTier.PRIVILEGED).limit(1)
    ).one()
    orphan_copy = Identity(
        source="orphans",
        kind=orphan.kind,
        external_id=orphan.external_id,
        name=orphan.name,
        description=orphan.description,
        tier=RiskTier.PRIVILEGED,
        detected_tier=RiskTier.PRIVILEGED,
        tier_reason=orphan.tier_reason,
        scope_summary=orphan.scope_summary,
        state=IdentityState.ORPHANED,
        claim_deadline=utcnow() + timedelta(days=14),
    )
    session.add(orphan_copy)
    session.flush()
    queue_notification(
        session,
        actor=system,
        dedupe_key="orphan",
        recipient=None,
        template="orphan_claim",
        context={"identity_id": orphan_copy.id},
        identity_id=orphan_copy.id,
    )
    claim_identity(session, orphan_copy, actor=Actor.person(owner.email))
    # NOTE: the key and the event id stay at 150 characters because the core
    # builds audit object ids and outbox keys of at most 200 from them.
    project = BusinessEntity(type=EntityType.PROJECT, key="z" * 150, name=_long(300))
    session.add(project)
    for number in range(40):
        doomed = Identity(
            source="doomed",
            kind=orphan.kind,
            external_id=f"{number}-" + "y" * 500,
            name=f"{number} " + _long(500),
            tier=RiskTier.STANDARD,
            detected_tier=RiskTier.STANDARD,
            state=IdentityState.OWNED,
            owner=orphan.owner,
        )
        doomed.entities.append(project)
        session.add(doomed)
    session.flush()
    outcome = receive_event(
        session,
        event_id="E" * 150,
        event_type=EventType.PROJECT_CLOSED,
        key=project.key,
        actor=system,
        settings=steward.settings,
    )
    assert outcome.event.revoke_count == 40
