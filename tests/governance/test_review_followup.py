"""Reminders and escalations of unanswered reviews, and stale messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.campaign.decision import decide_review
from governance.campaign.escalation import escalate_reviews
from governance.campaign.models import Campaign, Review, ReviewStatus
from governance.campaign.reminders import reminder_round, send_reminders
from governance.campaign.service import (
    campaign_counts,
    close_campaign,
    start_campaign,
)
from governance.identity.models import Identity
from governance.person.models import Person
from governance.remediation.models import Remediation, RemediationKind
from governance.remediation.notifications import obsolete_reason
from governance.settings import ReviewSettings
from tests.factories import make_identity, make_person
from tests.support.timeline import T0, at, day

ADMIN = Actor.person("security@example.com")
SYSTEM = Actor.system("scheduler")


@dataclass
class Team:
    """People of the tests: alice reports to carol, dave to inactive erin."""

    alice: Person
    bob: Person
    carol: Person
    dave: Person
    erin: Person


@pytest.fixture
def team(session: Session) -> Team:
    make_person(session, "security@example.com")
    carol = make_person(session, "carol@example.com")
    erin = make_person(session, "erin@example.com", active=False)
    people = Team(
        alice=make_person(session, "alice@example.com", manager=carol),
        bob=make_person(session, "bob@example.com"),
        carol=carol,
        dave=make_person(session, "dave@example.com", manager=erin),
        erin=erin,
    )
    session.commit()
    return people


def _open_campaign(
    app: Steward, session: Session, owners: list[Person], name: str = "c"
) -> Campaign:
    """Open a campaign at T0 with one due identity per entry of `owners`."""
    with at(T0):
        for owner in owners:
            make_identity(session, owner=owner, review_due_at=T0 - timedelta(days=1))
        session.commit()
        campaign = start_campaign(
            session, actor=ADMIN, settings=app.settings, name=name
        )
        session.commit()
    return campaign


def _reviews(app: Steward, campaign: Campaign) -> dict[int, list[Review]]:
    """Return the campaign's reviews by reviewer id, 0 for the security team."""
    by_reviewer: dict[int, list[Review]] = {}
    with app.session() as session:
        for review in session.scalars(
            sa.select(Review)
            .where(Review.campaign_id == campaign.id)
            .order_by(Review.id)
        ):
            by_reviewer.setdefault(review.reviewer_id or 0, []).append(review)
    return by_reviewer


def _messages(app: Steward, template: str) -> list[Remediation]:
    with app.session() as session:
        return list(
            session.scalars(
                sa.select(Remediation)
                .where(Remediation.kind == RemediationKind.NOTIFY)
                .where(Remediation.reason == template)
                .order_by(Remediation.id)
            )
        )


def _reminders(app: Steward) -> list[tuple[str, int]]:
    return [
        (row.payload["recipient"], row.payload["context"]["round"])
        for row in _messages(app, "review_reminder")
    ]


def _obsolete(app: Steward, message: Remediation) -> str | None:
    with app.session() as session:
        return obsolete_reason(session, message)


def _close(app: Steward, campaign: Campaign) -> None:
    with app.session() as session:
        close_campaign(
            session,
            session.get_one(Campaign, campaign.id),
            actor=ADMIN,
            settings=app.settings,
        )


def _decide(app: Steward, review_id: int) -> None:
    with app.session() as session:
        decide_review(
            session,
            review_id,
            active=True,
            minimal=True,
            actor=ADMIN,
            settings=app.settings,
        )


def test_reminder_round_boundaries() -> None:
    review = ReviewSettings(reminder_after_days=3, reminder_interval_days=2)
    assert reminder_round(T0, day(2.99), review) == 0
    assert reminder_round(T0, day(3), review) == 1
    assert reminder_round(T0, day(4.99), review) == 1
    assert reminder_round(T0, day(5), review) == 2
    assert reminder_round(T0, day(9), review) == 4


def test_reminders_once_per_reviewer_round(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice, team.alice, team.bob])

    with at(day(2.9)):
        assert send_reminders(app, actor=SYSTEM) == 0
    with at(day(3)):
        assert send_reminders(app, actor=SYSTEM) == 2
        assert send_reminders(app, actor=SYSTEM) == 0
    assert _reminders(app) == [("alice@example.com", 1), ("bob@example.com", 1)]
    first = _messages(app, "review_reminder")[0]
    assert first.payload["context"] == {
        "campaign_id": campaign.id,
        "reviewer_id": team.alice.id,
        "round": 1,
    }
    for reviews in _reviews(app, campaign).values():
        for review in reviews:
            assert review.reminder_count == 1
            assert review.last_reminded_at == day(3)

    with at(day(5.9)):
        assert send_reminders(app, actor=SYSTEM) == 0
    # Bob decides before the second round, so only alice is reminded again.
    [bob_review] = _reviews(app, campaign)[team.bob.id]
    with at(day(5.95)):
        _decide(app, bob_review.id)
    with at(day(6)):
        assert send_reminders(app, actor=SYSTEM) == 1
    assert _reminders(app)[2:] == [("alice@example.com", 2)]

    # A closed campaign sends no reminder.
    with at(day(8)):
        _close(app, campaign)
    with at(day(9)):
        assert send_reminders(app, actor=SYSTEM) == 0
    assert len(_reminders(app)) == 3


def test_reminders_skip_missed_rounds(
    app: Steward, session: Session, team: Team
) -> None:
    _open_campaign(app, session, [team.bob])
    # No worker ran for the first three rounds: one reminder, for round 4.
    with at(day(12)):
        assert send_reminders(app, actor=SYSTEM) == 1
        assert send_reminders(app, actor=SYSTEM) == 0
    assert _reminders(app) == [("bob@example.com", 4)]


def test_reminder_obsolete_after_decision(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice, team.bob])
    with at(day(3)):
        send_reminders(app, actor=SYSTEM)
    alice_reminder, bob_reminder = _messages(app, "review_reminder")
    bob_request = next(
        row
        for row in _messages(app, "review_request")
        if row.payload["context"]["reviewer_id"] == team.bob.id
    )
    assert _obsolete(app, alice_reminder) is None
    assert _obsolete(app, bob_reminder) is None
    assert _obsolete(app, bob_request) is None

    # Bob decides after the reminder was queued, before a notifier sends it.
    [bob_review] = _reviews(app, campaign)[team.bob.id]
    with at(day(3.01)):
        _decide(app, bob_review.id)
    expected = f"person {team.bob.id} has no pending review left in campaign"
    assert (_obsolete(app, bob_reminder) or "").startswith(expected)
    assert (_obsolete(app, bob_request) or "").startswith(expected)
    assert _obsolete(app, alice_reminder) is None

    with at(day(4)):
        _close(app, campaign)
    closed = f"campaign {campaign.id} is closed"
    assert _obsolete(app, alice_reminder) == closed
    # Other templates are never judged obsolete.
    [expired] = _messages(app, "review_expired")
    assert _obsolete(app, expired) is None


def test_escalation_to_manager_or_security(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice, team.bob, team.dave])
    with at(day(6.9)):
        assert escalate_reviews(app, actor=SYSTEM) == 0
    with at(day(7)):
        assert escalate_reviews(app, actor=SYSTEM) == 3
        assert escalate_reviews(app, actor=SYSTEM) == 0

    reviews = _reviews(app, campaign)
    # Alice's manager takes her review; bob has no manager and dave's manager
    # is inactive, so theirs go to the security team's queue.
    [to_carol] = reviews[team.carol.id]
    to_security = reviews[0]
    assert len(to_security) == 2
    for review in [to_carol, *to_security]:
        assert review.escalation_level == 1
        assert review.escalated_at == day(7)
        assert review.status is ReviewStatus.PENDING

    notices = {
        (row.payload["context"]["review_id"], row.payload["recipient"]): row.payload[
            "context"
        ]
        for row in _messages(app, "review_escalated")
    }
    assert notices[(to_carol.id, "carol@example.com")] == {
        "review_id": to_carol.id,
        "campaign_id": campaign.id,
        "from_person_id": team.alice.id,
        "to_person_id": team.carol.id,
    }
    assert (to_carol.id, "alice@example.com") in notices
    bob_review = next(
        review
        for review in to_security
        if session.get_one(Identity, review.identity_id).owner_id == team.bob.id
    )
    assert notices[(bob_review.id, None)]["to_person_id"] is None
    assert notices[(bob_review.id, None)]["from_person_id"] == team.bob.id
    assert (bob_review.id, "bob@example.com") in notices
    assert len(notices) == 6

    events = session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "review.escalated")
    ).all()
    assert len(events) == 3
    carol_event = next(e for e in events if e.object_id == str(to_carol.id))
    assert carol_event.details == {
        "campaign_id": campaign.id,
        "from_person_id": team.alice.id,
        "to_person_id": team.carol.id,
        "level": 1,
    }
    # Reviews escalated to the security team are not counted as orphans.
    counts = campaign_counts(session, session.get_one(Campaign, campaign.id))
    assert (counts.pending, counts.orphans) == (3, 0)
    assert verify_database(session).ok


def test_escalation_repeats_per_level(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice])
    with at(day(7)):
        escalate_reviews(app, actor=SYSTEM)
    # Carol has no manager: one escalation period later it goes to security,
    # and from there it escalates no further.
    with at(day(13.9)):
        assert escalate_reviews(app, actor=SYSTEM) == 0
    with at(day(14)):
        assert escalate_reviews(app, actor=SYSTEM) == 1
    with at(day(30)):
        assert escalate_reviews(app, actor=SYSTEM) == 0
    [review] = _reviews(app, campaign)[0]
    assert review.escalation_level == 2
    recipients = [
        row.payload["recipient"] for row in _messages(app, "review_escalated")
    ]
    assert recipients == [
        "carol@example.com",
        "alice@example.com",
        None,
        "carol@example.com",
    ]


def test_escalation_skips_finished_reviews(
    app: Steward, session: Session, team: Team
) -> None:
    decided_campaign = _open_campaign(app, session, [team.alice], name="decided")
    [decided] = _reviews(app, decided_campaign)[team.alice.id]
    with at(day(1)):
        _decide(app, decided.id)
    closed_campaign = _open_campaign(app, session, [team.bob], name="closed")
    with at(day(2)):
        _close(app, closed_campaign)

    with at(day(8)):
        assert escalate_reviews(app, actor=SYSTEM) == 0
    assert _messages(app, "review_escalated") == []
    reviews = session.scalars(sa.select(Review)).all()
    assert len(reviews) == 2
    for review in reviews:
        assert review.escalation_level == 0
        assert review.escalated_at is None


def test_escalation_notice_obsolete_after_decision(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice])
    with at(day(7)):
        escalate_reviews(app, actor=SYSTEM)
    notices = _messages(app, "review_escalated")
    assert [_obsolete(app, row) for row in notices] == [None, None]

    [review] = _reviews(app, campaign)[team.carol.id]
    with at(day(7.5)):
        _decide(app, review.id)
    for row in notices:
        assert _obsolete(app, row) == f"review {review.id} is decided"


def test_escalation_notice_obsolete_when_reassigned(
    app: Steward, session: Session, team: Team
) -> None:
    campaign = _open_campaign(app, session, [team.alice])
    with at(day(7)):
        escalate_reviews(app, actor=SYSTEM)
    first_notices = _messages(app, "review_escalated")
    with at(day(14)):
        escalate_reviews(app, actor=SYSTEM)
    [review] = _reviews(app, campaign)[0]
    for row in first_notices:
        assert _obsolete(app, row) == f"review {review.id} was reassigned again"
    for row in _messages(app, "review_escalated")[2:]:
        assert _obsolete(app, row) is None
