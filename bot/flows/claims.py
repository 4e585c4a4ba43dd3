"""Orphan posts and claim approvals: Claim, Not mine, Approve and Reject.

Guests (restricted Slack users) cannot claim: they get an ephemeral message
and nothing changes. A claim of a privileged identity waits for a security
admin, whom the core asks with a `claim_approval` notification. After a
claim, and after its approval or rejection, every orphan post that shows
the identity (for a campaign's orphans, the one page that lists it) is
edited to show the outcome.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, Respond
from sqlalchemy.orm import Session

from bot.actions import Action
from bot.context import Bot
from bot.directory import RESTRICTED
from bot.errors import UsageError, reply_to_errors
from bot.flows.clicks import (
    Click,
    find_sent,
    identify,
    parse_id,
    refresh_clicked,
    refresh_sent,
    tell,
)
from bot.messages.claims import orphan_page_keys
from bot.messages.parts import identity_title
from governance.claim.models import ClaimStatus
from governance.claim.service import claim_identity, decide_claim, disown, lock_claim
from governance.delivery.models import SentMessage
from governance.identity.service import find_identity
from governance.remediation.models import Remediation, RemediationKind
from governance.remediation.notifications import Template


def orphan_posts(session: Session, identity_id: int) -> list[int]:
    """Return the ids of the posted orphan messages that show one identity.

    These are the posts of the identity alone and, for each campaign that
    listed it among its orphans, the one page of that list that shows it.
    """
    notifications = sa.select(Remediation.id).where(
        Remediation.identity_id == identity_id,
        Remediation.kind == RemediationKind.NOTIFY,
        Remediation.reason == Template.ORPHAN_CLAIM.value,
    )
    own_posts = SentMessage.remediation_id.in_(notifications)
    page_keys = orphan_page_keys(session, identity_id)
    matching = (
        sa.or_(own_posts, SentMessage.key.in_(page_keys)) if page_keys else own_posts
    )
    return list(
        session.scalars(
            sa.select(SentMessage.id)
            .where(matching, SentMessage.template == Template.ORPHAN_CLAIM.value)
            .order_by(SentMessage.id)
        )
    )


def register(bot: Bot) -> None:
    """Register the orphan and claim approval buttons on the bot."""

    @bot.bolt.action(Action.ORPHAN_CLAIM.value)
    @reply_to_errors
    def claim(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        identity_id = parse_id(click.value)
        if bot.directory.user_info(click.user_id).status == RESTRICTED:
            raise UsageError(
                "Guests cannot claim identities. Ask a full member of the workspace "
                "who owns it to claim it."
            )
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            identity = find_identity(session, str(identity_id))
            claimed = claim_identity(session, identity, actor=actor)
            waiting = claimed.status is ClaimStatus.PENDING_APPROVAL
            title = identity_title(identity)
            time_zone = person.time_zone
            posts = orphan_posts(session, identity.id)
            clicked = _clicked_post(session, click)
            if clicked is not None and clicked not in posts:
                posts.append(clicked)
        ack()
        if waiting:
            tell(
                respond,
                f"Your claim of {title} waits for a security admin's approval, "
                "because the identity is privileged.",
            )
        else:
            tell(respond, f"You now own {title}.")
        refresh_sent(bot, posts, time_zone)

    @bot.bolt.action(Action.ORPHAN_NOT_MINE.value)
    @reply_to_errors
    def not_mine(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        identity_id = parse_id(click.value)
        with bot.steward.session() as session:
            _, actor = identify(bot, session, click.user_id)
            identity = find_identity(session, str(identity_id))
            disown(session, identity, actor=actor)
            title = identity_title(identity)
        ack()
        tell(respond, f"Noted: {title} is not yours. It stays open to claims.")

    for action, approve in (
        (Action.CLAIM_APPROVE, True),
        (Action.CLAIM_REJECT, False),
    ):
        bot.bolt.action(action.value)(claim_decision_listener(bot, approve))


def _clicked_post(session: Session, click: Click) -> int | None:
    """Return the `sent_message` id of the clicked orphan post, if recorded."""
    if click.channel is None or click.message_ts is None:
        return None
    sent = find_sent(session, click.channel, click.message_ts)
    if sent is None or sent.template != Template.ORPHAN_CLAIM.value:
        return None
    return sent.id


def claim_decision_listener(bot: Bot, approve: bool) -> Any:
    """Return the listener of the Approve or Reject button of a claim."""

    @reply_to_errors
    def decide(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        claim_id = parse_id(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            claim = lock_claim(session, claim_id)
            decide_claim(
                session, claim, approve=approve, actor=actor, settings=bot.settings
            )
            posts = orphan_posts(session, claim.identity_id)
            time_zone = person.time_zone
        ack()
        refresh_clicked(bot, click, time_zone)
        refresh_sent(bot, posts, time_zone)

    return decide
