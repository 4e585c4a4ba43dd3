"""Review buttons: certify, keep with a scope reduction, revoke, not mine.

Each decision is committed by `decide_review` before `ack()`, and the
clicked message is edited afterwards. A click on a decided review changes
nothing, and the clicker gets an ephemeral message naming who decided it and
when. "Not mine" opens a modal with a user picker, and its submission hands
the review to that person.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from slack_bolt import Ack, Respond
from sqlalchemy.orm import Session

from bot.actions import Action, Callback
from bot.blocks import cut, plain, section
from bot.context import Bot
from bot.directory import DEACTIVATED, RESTRICTED, UnknownUserError
from bot.errors import USER_ERRORS, UsageError, reply_to_errors
from bot.flows.clicks import (
    Click,
    identify,
    parse_id,
    parse_ids,
    refresh_clicked,
    tell,
)
from bot.messages import Page
from bot.messages.parts import Reader, name_for_email, people_by_email, text
from bot.messages.reviews import DECIDED_AS, ReviewPage, build_review_page
from bot.timefmt import show_time
from governance.campaign.decision import (
    certify_standard_reviews,
    decide_review,
    may_decide,
)
from governance.campaign.models import Review, ReviewStatus
from governance.campaign.reassign import reassign_review
from governance.errors import ConflictError, NotFoundError, PermissionDeniedError
from governance.identity.models import Identity
from governance.ids import parse_database_id
from governance.person.models import Person
from governance.remediation.notifications import Template

logger = logging.getLogger(__name__)

# (application active, scope minimal) behind each decision button.
ANSWERS = {
    Action.REVIEW_CERTIFY: (True, True),
    Action.REVIEW_REDUCE_SCOPE: (True, False),
    Action.REVIEW_REVOKE: (False, True),
}
REVIEWER_BLOCK = "reviewer"
REVIEWER_ACTION = "user"
MAX_MODAL_ERROR = 300


def already_decided(session: Session, review: Review, time_zone: str | None) -> str:
    """Return the ephemeral message for a click on a review decided before."""
    people = people_by_email(session, [review.decided_by])
    decision = DECIDED_AS[review.decision].lower() if review.decision else "decided"
    return (
        f"Already decided by {name_for_email(people, review.decided_by)} at "
        f"{show_time(review.decided_at, time_zone)}: {decision}. Nothing was changed."
    )


def page_from_blocks(session: Session, click: Click) -> Page | None:
    """Rebuild a review page from the review ids in a message's block ids.

    Used for a message whose `sent_message` row is missing: its sections
    carry `review:<id>` block ids, and the clicker is its reader.
    """
    review_ids: list[int] = []
    for block in click.message_blocks:
        parts = str(block.get("block_id") or "").split(":")
        review_id = parse_database_id(parts[1]) if len(parts) == 2 else None
        if parts[0] == "review" and review_id is not None:
            review_ids.append(review_id)
    if not review_ids:
        return None
    first = session.get(Review, review_ids[0])
    if first is None:
        return None
    person = session.scalars(
        sa.select(Person).where(Person.slack_user_id == click.user_id)
    ).one_or_none()
    spec = ReviewPage(
        template=Template.REVIEW_REQUEST,
        key="",
        campaign_id=first.campaign_id,
        reviewer_id=person.id if person is not None else None,
        reviews=review_ids,
    )
    zone = person.time_zone if person is not None else None
    return build_review_page(session, spec, Reader(time_zone=zone))


def register(bot: Bot) -> None:
    """Register the review buttons and the reassignment modal on the bot."""
    for action, (active, minimal) in ANSWERS.items():
        bot.bolt.action(action.value)(decision_listener(bot, active, minimal))

    @bot.bolt.action(Action.REVIEW_CERTIFY_ALL.value)
    @reply_to_errors
    def certify_all(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        review_ids = parse_ids(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            certified = certify_standard_reviews(
                session, review_ids, actor=actor, settings=bot.settings
            )
            time_zone = person.time_zone
        ack()
        noun = "identity" if len(certified) == 1 else "identities"
        tell(respond, f"Certified {len(certified)} standard-tier {noun}.")
        refresh_clicked(bot, click, time_zone, page_from_blocks)

    @bot.bolt.action(Action.REVIEW_NOT_MINE.value)
    @reply_to_errors
    def not_mine(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        review_id = parse_id(click.value)
        with bot.steward.session() as session:
            _, actor = identify(bot, session, click.user_id)
            review = session.get(Review, review_id)
            if review is None:
                raise NotFoundError("review", str(review_id))
            if review.status is not ReviewStatus.PENDING:
                raise ConflictError(
                    f"This review is {review.status.value}; it can no longer be "
                    "handed on."
                )
            if not may_decide(session, review, actor, bot.settings):
                raise PermissionDeniedError(
                    "Only the reviewer, a backup owner or a security admin may hand "
                    "this review on."
                )
            identity = session.get_one(Identity, review.identity_id)
            view = reassign_modal(review.id, identity.name, click)
        ack()
        bot.client.views_open(trigger_id=click.trigger_id, view=view)

    @bot.bolt.view(Callback.REVIEW_REASSIGN.value)
    @reply_to_errors
    def submit_reassign(
        ack: Ack, respond: Respond | None, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            review_id = parse_database_id(str(metadata["review_id"]))
            if review_id is None:
                raise ValueError("invalid review id")
            state = view["state"]["values"][REVIEWER_BLOCK][REVIEWER_ACTION]
            selected = state.get("selected_user")
        except (ValueError, KeyError, TypeError):
            raise UsageError("This form is incomplete; open it again.") from None
        try:
            time_zone = hand_over(bot, str(body["user"]["id"]), review_id, selected)
        except USER_ERRORS as error:
            ack(
                response_action="errors",
                errors={REVIEWER_BLOCK: cut(str(error), MAX_MODAL_ERROR)},
            )
            return
        ack()
        click = Click(
            user_id=str(body["user"]["id"]),
            value=str(review_id),
            channel=metadata.get("channel"),
            message_ts=metadata.get("ts"),
            trigger_id=None,
            message_blocks=[],
        )
        refresh_clicked(bot, click, time_zone)


def decision_listener(bot: Bot, active: bool, minimal: bool) -> Any:
    """Return the listener of one decision button."""

    @reply_to_errors
    def decide(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        review_id = parse_id(click.value)
        with bot.steward.session() as session:
            person, actor = identify(bot, session, click.user_id)
            outcome = decide_review(
                session,
                review_id,
                active=active,
                minimal=minimal,
                actor=actor,
                settings=bot.settings,
            )
            time_zone = person.time_zone
            answer = (
                None
                if outcome.created
                else already_decided(session, outcome.review, time_zone)
            )
        ack()
        if answer is not None:
            tell(respond, answer)
            return
        refresh_clicked(bot, click, time_zone, page_from_blocks)

    return decide


NOT_IN_DIRECTORY = (
    "That person is not in Steward's people directory; pick someone who is, "
    "or ask the security team to import them."
)


def hand_over(
    bot: Bot, user_id: str, review_id: int, selected: str | None
) -> str | None:
    """Hand a review to the Slack user picked in the modal; return the clicker's zone.

    Raises UsageError for a guest or deactivated pick, UnknownUserError for
    someone who is not one of Steward's people, and the core's errors from
    `reassign_review`.
    """
    if not selected:
        raise UsageError("Pick the person who should review this identity.")
    try:
        picked = bot.directory.known_user_info(selected)
    except UnknownUserError:
        raise UsageError(NOT_IN_DIRECTORY) from None
    if picked.status == DEACTIVATED:
        raise UsageError("That Slack account is deactivated; pick someone else.")
    if picked.status == RESTRICTED:
        raise UsageError("Guests cannot review identities; pick a full member.")
    with bot.steward.session() as session:
        person, actor = identify(bot, session, user_id)
        try:
            target = bot.directory.person_for(session, selected)
        except UnknownUserError:
            raise UsageError(NOT_IN_DIRECTORY) from None
        reassign_review(
            session, review_id, target.email, actor=actor, settings=bot.settings
        )
        return person.time_zone


def reassign_modal(review_id: int, identity_name: str, click: Click) -> dict[str, Any]:
    """Return the modal in which the clicker picks the review's new reviewer.

    The private metadata carries the review id and where the clicked message
    is, so that the submission can edit it.
    """
    metadata = json.dumps(
        {"review_id": review_id, "channel": click.channel, "ts": click.message_ts}
    )
    return {
        "type": "modal",
        "callback_id": Callback.REVIEW_REASSIGN.value,
        "title": plain("Not mine", 24),
        "submit": plain("Hand over", 24),
        "close": plain("Cancel", 24),
        "private_metadata": metadata,
        "blocks": [
            section(
                f"Who should review *{text(identity_name, 200)}*? They become its "
                "reviewer in this campaign and get a message from Steward."
            ),
            {
                "type": "input",
                "block_id": REVIEWER_BLOCK,
                "label": plain("Reviewer", 2000),
                "element": {
                    "type": "users_select",
                    "action_id": REVIEWER_ACTION,
                    "placeholder": plain("Pick a person", 150),
                },
            },
        ],
    }
