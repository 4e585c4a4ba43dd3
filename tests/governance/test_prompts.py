"""The notifications the core queues for people to act on, and handing reviews on."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.business_event.models import EventType
from governance.business_event.service import lock_event, receive_event
from governance.campaign.decision import certify_standard_reviews
from governance.campaign.models import Review, ReviewStatus
from governance.campaign.reassign import reassign_review
from governance.campaign.service import start_campaign
from governance.claim.service import claim_identity, decide_claim, disown, lock_claim
from governance.clock import utcnow
from governance.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.ownership.rules import orphan, start_claim_window
from governance.ownership.service import deactivate_departed
from governance.person.models import Person
from governance.remediation.models import Remediation, RemediationKind
from governance.remediation.operations import decide_approval
from governance.remediation.service import queue_revocation
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
ALICE = Actor.person("alice@example.com")
BOB = Actor.person("bob@example.com")


@pytest.fixture
def team(session: Session) -> dict[str, Person]:
    people = {
        name: make_person(session, f"{name}@example.com")
        for name in ("security", "alice", "bob", "carol")
    }
    people["former"] = make_person(session, "former@example.com", active=False)
    session.commit()
    return people


def notifications(session: Session, template: str) -> list[Remediation]:
    return list(
        session.scalars(
            sa.select(Remediation)
            .where(
                Remediation.kind == RemediationKind.NOTIFY,
                Remediation.reason == template,
            )
            .order_by(Remediation.id)
        )
    )


def events(session: Session, action: str) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == action)
        )
        or 0
    )


def open_reviews(
    session: Session, app: Steward, owner: Person, tiers: list[RiskTier]
) -> list[int]:
    due = utcnow() - timedelta(days=1)
    for tier in tiers:
        make_identity(session, owner=owner, tier=tier, review_due_at=due)
    session.commit()
    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    return list(
        session.scalars(
            sa.select(Review.id)
            .where(Review.campaign_id == campaign.id)
            .order_by(Review.id)
        )
    )


def test_campaign_requests_one_per_reviewer(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    open_reviews(session, app, team["alice"], [RiskTier.STANDARD] * 3)
    [request] = notifications(session, "review_request")
    assert request.payload["recipient"] == "alice@example.com"
    assert request.payload["context"]["reviewer_id"] == team["alice"].id


def test_privileged_claim_asks_admins_once(
    session: Session, team: dict[str, Person]
) -> None:
    identity = make_identity(
        session, state=IdentityState.ORPHANED, tier=RiskTier.PRIVILEGED
    )
    first = claim_identity(session, identity, actor=ALICE)
    again = claim_identity(session, identity, actor=ALICE)
    session.commit()
    assert again.id == first.id
    [approval] = notifications(session, "claim_approval")
    assert approval.payload["recipient"] is None
    assert approval.payload["context"] == {"claim_id": first.id}
    assert approval.dedupe_key == f"claim:{first.id}:approval"

    standard = make_identity(session, state=IdentityState.ORPHANED)
    claim_identity(session, standard, actor=BOB)
    session.commit()
    assert len(notifications(session, "claim_approval")) == 1


@pytest.mark.parametrize("approve", [True, False])
def test_claim_decision_tells_claimant(
    app: Steward, session: Session, team: dict[str, Person], approve: bool
) -> None:
    identity = make_identity(
        session, state=IdentityState.ORPHANED, tier=RiskTier.PRIVILEGED
    )
    claim = claim_identity(session, identity, actor=ALICE)
    session.commit()

    locked = lock_claim(session, claim.id)
    decide_claim(session, locked, approve=approve, actor=ADMIN, settings=app.settings)
    session.commit()

    [decided] = notifications(session, "claim_decided")
    assert decided.payload["recipient"] == "alice@example.com"
    assert decided.payload["context"] == {"claim_id": claim.id}
    with pytest.raises(ConflictError, match="already"):
        decide_claim(session, locked, approve=True, actor=ADMIN, settings=app.settings)
    session.rollback()
    assert len(notifications(session, "claim_decided")) == 1
    with pytest.raises(NotFoundError):
        lock_claim(session, 999_999)


def test_disown_recorded_once_per_orphaning(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    identity = make_identity(session, state=IdentityState.ORPHANED)
    start_claim_window(identity, 14)
    session.commit()

    assert disown(session, identity, actor=ALICE)
    assert not disown(session, identity, actor=ALICE)
    assert disown(session, identity, actor=BOB)
    session.commit()
    assert events(session, "claim.disowned") == 2
    assert identity.state is IdentityState.ORPHANED

    # Claimed and orphaned again, it is a new question.
    claim_identity(session, identity, actor=Actor.person("carol@example.com"))
    session.commit()
    with pytest.raises(ConflictError, match="only orphans"):
        disown(session, identity, actor=ALICE)
    session.rollback()
    orphan(
        session,
        identity,
        actor=ADMIN,
        action="owner.removed",
        reason="test",
        claim_deadline_days=14,
    )
    session.commit()
    assert disown(session, identity, actor=ALICE)
    session.commit()
    assert events(session, "claim.disowned") == 3
    with pytest.raises(InvalidInputError, match="inactive"):
        disown(session, identity, actor=Actor.person("former@example.com"))
    session.rollback()
    assert verify_database(session).ok


def test_waiting_revocation_asks_admins(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    privileged = make_identity(session, owner=team["alice"], tier=RiskTier.PRIVILEGED)
    standard = make_identity(session, owner=team["alice"])
    waiting = queue_revocation(
        session,
        privileged,
        actor=ALICE,
        action="test.revoke",
        reason="test",
        dedupe_key="test:1",
    )
    queue_revocation(
        session,
        standard,
        actor=ALICE,
        action="test.revoke",
        reason="test",
        dedupe_key="test:2",
    )
    queue_revocation(
        session,
        privileged,
        actor=ALICE,
        action="test.revoke",
        reason="test",
        dedupe_key="test:1",
    )
    session.commit()
    [approval] = notifications(session, "revocation_approval")
    assert approval.payload["context"] == {"remediation_id": waiting.id}
    assert approval.payload["recipient"] is None

    decide_approval(session, waiting, approve=False, actor=ADMIN, settings=app.settings)
    session.commit()
    [decided] = notifications(session, "remediation_decided")
    assert decided.payload["recipient"] == "alice@example.com"
    assert decided.payload["context"] == {"remediation_id": waiting.id}


def test_system_requester_not_told(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    identity = make_identity(session, owner=team["alice"], tier=RiskTier.PRIVILEGED)
    waiting = queue_revocation(
        session,
        identity,
        actor=Actor.system("claims"),
        action="test.revoke",
        reason="test",
        dedupe_key="test:system",
    )
    decide_approval(session, waiting, approve=True, actor=ADMIN, settings=app.settings)
    session.commit()
    assert notifications(session, "remediation_decided") == []


def test_event_asks_admins_once(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    project = BusinessEntity(type=EntityType.PROJECT, key="apollo", name="Apollo")
    session.add(project)
    for _ in range(3):
        identity = make_identity(session, owner=team["alice"], tier=RiskTier.PRIVILEGED)
        identity.entities.append(project)
    session.commit()
    itsm = Actor.system("itsm")
    for _ in range(2):
        outcome = receive_event(
            session,
            event_id="CHG7",
            event_type=EventType.PROJECT_CLOSED,
            key="apollo",
            actor=itsm,
            settings=app.settings,
        )
        session.commit()
    [approval] = notifications(session, "event_approval")
    assert approval.payload["context"] == {"event_id": "CHG7"}
    assert approval.dedupe_key == f"business_event:{outcome.event.id}:approval"
    assert notifications(session, "revocation_approval") == []
    assert lock_event(session, outcome.event.id).event_id == "CHG7"
    with pytest.raises(NotFoundError):
        lock_event(session, 999_999)


def test_reassign_review(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    [review_id] = open_reviews(session, app, team["alice"], [RiskTier.STANDARD])

    outcome = reassign_review(
        session, review_id, "bob@example.com", actor=ALICE, settings=app.settings
    )
    session.commit()
    assert outcome.changed
    assert outcome.previous is not None
    assert outcome.previous.email == "alice@example.com"
    review = session.get_one(Review, review_id)
    assert review.reviewer_id == team["bob"].id
    assert review.status is ReviewStatus.PENDING
    [handed] = [
        row
        for row in notifications(session, "review_request")
        if "review_ids" in row.payload["context"]
    ]
    assert handed.payload["recipient"] == "bob@example.com"
    assert handed.payload["context"]["review_ids"] == [review_id]

    # Alice is no longer the reviewer. Bob hands it back, and Alice gets a
    # new request.
    with pytest.raises(PermissionDeniedError):
        reassign_review(
            session, review_id, "carol@example.com", actor=ALICE, settings=app.settings
        )
    session.rollback()
    same = reassign_review(
        session, review_id, "bob@example.com", actor=BOB, settings=app.settings
    )
    assert not same.changed
    reassign_review(
        session, review_id, "alice@example.com", actor=BOB, settings=app.settings
    )
    session.commit()
    assert events(session, "review.reassigned") == 2
    handed_over = [
        row.payload["recipient"]
        for row in notifications(session, "review_request")
        if "review_ids" in row.payload["context"]
    ]
    assert handed_over == ["bob@example.com", "alice@example.com"]


def test_reassign_rejects_bad_targets(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    [review_id] = open_reviews(session, app, team["alice"], [RiskTier.STANDARD])
    before = events(session, "review.reassigned")
    with pytest.raises(InvalidInputError, match="inactive"):
        reassign_review(
            session, review_id, "former@example.com", actor=ALICE, settings=app.settings
        )
    session.rollback()
    with pytest.raises(NotFoundError):
        reassign_review(
            session, review_id, "nobody@example.com", actor=ALICE, settings=app.settings
        )
    session.rollback()
    certify_standard_reviews(session, [review_id], actor=ALICE, settings=app.settings)
    session.commit()
    with pytest.raises(ConflictError, match="decided"):
        reassign_review(
            session, review_id, "bob@example.com", actor=ALICE, settings=app.settings
        )
    session.rollback()
    assert events(session, "review.reassigned") == before
    assert session.get_one(Review, review_id).reviewer_id == team["alice"].id


def test_certify_standard_reviews(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    reviews = open_reviews(
        session,
        app,
        team["alice"],
        [RiskTier.PRIVILEGED, RiskTier.STANDARD, RiskTier.STANDARD],
    )
    with pytest.raises(PermissionDeniedError):
        certify_standard_reviews(session, reviews, actor=BOB, settings=app.settings)
    session.rollback()

    certified = certify_standard_reviews(
        session, reviews, actor=ALICE, settings=app.settings
    )
    session.commit()
    assert certified == reviews[1:]
    assert session.get_one(Review, reviews[0]).status is ReviewStatus.PENDING
    assert (
        certify_standard_reviews(session, reviews, actor=ALICE, settings=app.settings)
        == []
    )
    assert events(session, "review.decided") == 2


def test_departure_applied_once(
    app: Steward, session: Session, team: dict[str, Person]
) -> None:
    alice = team["alice"]
    owned = make_identity(session, owner=alice)
    owned.backup_owners.append(team["bob"])
    session.commit()
    slack = Actor.system("slack")

    first = deactivate_departed(
        session, alice, actor=slack, settings=app.settings, reason="left"
    )
    session.commit()
    again = deactivate_departed(
        session, alice, actor=slack, settings=app.settings, reason="left"
    )
    session.commit()

    assert first is not None
    assert first.inherited == 1
    assert again is None
    assert not alice.active
    assert session.get_one(Identity, owned.id).owner_id == team["bob"].id
    assert events(session, "person.deactivated") == 1
    assert events(session, "owner.departed") == 1
