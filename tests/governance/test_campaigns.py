"""Campaigns: who is due, reviews, decisions and closing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from click.testing import CliRunner
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.decision import decide_review
from governance.campaign.models import Decision, Review, ReviewStatus
from governance.campaign.schedule import first_review_due
from governance.campaign.service import (
    campaign_counts,
    campaign_report,
    close_campaign,
    start_campaign,
)
from governance.cli.main import cli
from governance.clock import utcnow
from governance.errors import ConflictError, PermissionDeniedError
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.settings import ReviewSettings
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
ALICE = Actor.person("alice@example.com")


@pytest.fixture
def inventory(session: Session) -> dict[str, Identity]:
    alice = make_person(session, "alice@example.com")
    bob = make_person(session, "bob@example.com")
    make_person(session, "security@example.com")
    past = utcnow() - timedelta(days=1)
    future = utcnow() + timedelta(days=200)
    crm = BusinessEntity(type=EntityType.APPLICATION, key="crm", name="CRM")
    session.add(crm)
    items = {
        "due": make_identity(session, owner=alice, review_due_at=past, name="due"),
        "privileged": make_identity(
            session,
            owner=alice,
            review_due_at=past,
            tier=RiskTier.PRIVILEGED,
            name="priv",
        ),
        "later": make_identity(
            session, owner=alice, review_due_at=future, name="later"
        ),
        "orphan": make_identity(
            session, state=IdentityState.ORPHANED, review_due_at=past, name="orphan"
        ),
        "other_source": make_identity(
            session, owner=bob, review_due_at=past, source="saas", name="saas-key"
        ),
    }
    items["due"].entities.append(crm)
    items["due"].backup_owners.append(bob)
    session.commit()
    return items


def test_first_review_spread_over_cycle() -> None:
    review = ReviewSettings()
    start = utcnow()
    dues = [
        first_review_due(start, RiskTier.STANDARD, f"key-{n}", review)
        for n in range(2000)
    ]
    offsets = [(due - start).days for due in dues]
    assert min(offsets) >= 1
    assert max(offsets) <= 365
    # Spread: no single day has more than a few percent of the backlog.
    assert max(offsets.count(day) for day in set(offsets)) < 40
    assert len({offset // 30 for offset in offsets}) >= 12
    privileged = first_review_due(start, RiskTier.PRIVILEGED, "key-1", review)
    assert (privileged - start).days <= 90


def test_campaign_selects_due_identities(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    reviews = session.scalars(sa.select(Review).order_by(Review.id)).all()
    by_identity = {review.identity_id: review for review in reviews}
    assert set(by_identity) == {
        inventory[name].id for name in ("due", "privileged", "orphan", "other_source")
    }
    due = by_identity[inventory["due"].id]
    assert due.reviewer is not None
    assert due.reviewer.email == "alice@example.com"
    assert due.evidence["entities"] == ["application:crm"]
    assert due.evidence["name"] == "due"
    assert due.evidence["tier"] == "standard"
    assert by_identity[inventory["orphan"].id].reviewer_id is None

    session.expire_all()
    assert (
        session.get_one(Identity, inventory["due"].id).state
        is IdentityState.UNDER_REVIEW
    )
    assert (
        session.get_one(Identity, inventory["orphan"].id).state
        is IdentityState.ORPHANED
    )
    counts = campaign_counts(session, campaign)
    assert (counts.total, counts.pending, counts.orphans) == (4, 4, 1)
    messages = session.scalars(
        sa.select(Remediation)
        .where(Remediation.kind == RemediationKind.NOTIFY)
        .order_by(Remediation.id)
    ).all()
    templates = [message.payload["template"] for message in messages]
    assert sorted(templates) == ["orphan_claim", "review_request", "review_request"]
    # One request per reviewer, however many reviews each has (alice has two).
    requests = {
        message.payload["recipient"]: message.payload["context"]
        for message in messages
        if message.payload["template"] == "review_request"
    }
    alice = inventory["due"].owner_id
    bob = inventory["other_source"].owner_id
    assert requests == {
        "alice@example.com": {"campaign_id": campaign.id, "reviewer_id": alice},
        "bob@example.com": {"campaign_id": campaign.id, "reviewer_id": bob},
    }
    [claims] = [
        message for message in messages if message.payload["template"] == "orphan_claim"
    ]
    assert claims.payload["recipient"] is None
    assert claims.payload["context"] == {
        "campaign_id": campaign.id,
        "identity_ids": [inventory["orphan"].id],
    }

    # An identity in an open review is not added to a second campaign.
    second = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    assert campaign_counts(session, second).total == 0
    assert verify_database(session).ok


def test_campaign_queues_one_claim_request(app: Steward, session: Session) -> None:
    past = utcnow() - timedelta(days=1)
    orphans = [
        make_identity(session, state=IdentityState.ORPHANED, review_due_at=past).id
        for _ in range(25)
    ]
    session.commit()

    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()

    claims = session.scalars(
        sa.select(Remediation).where(Remediation.reason == "orphan_claim")
    ).all()
    assert len(claims) == 1
    assert claims[0].dedupe_key == f"campaign:{campaign.id}:orphans"
    assert claims[0].identity_id is None
    assert claims[0].payload["context"]["identity_ids"] == sorted(orphans)
    assert campaign_counts(session, campaign).orphans == 25


def test_campaign_filters(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    by_tier = start_campaign(
        session, actor=ADMIN, settings=app.settings, tier=RiskTier.PRIVILEGED
    )
    by_source = start_campaign(
        session, actor=ADMIN, settings=app.settings, source="saas"
    )
    ahead = start_campaign(
        session, actor=ADMIN, settings=app.settings, due_within_days=300
    )
    session.commit()
    assert campaign_counts(session, by_tier).total == 1
    assert campaign_counts(session, by_source).total == 1
    assert campaign_counts(session, ahead).total == 3


def test_campaign_skips_interleaved_identities(
    app: Steward, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two due identities span ids that are not due: other tiers,
    # identities in an open review, not yet due, or revoked.
    monkeypatch.setattr("governance.campaign.service.BATCH_SIZE", 2)
    owner = make_person(session, "carol@example.com")
    past = utcnow() - timedelta(days=1)
    future = utcnow() + timedelta(days=30)
    expected: list[int] = []
    for number in range(12):
        privileged = number % 2 == 0
        identity = make_identity(
            session,
            owner=owner,
            tier=RiskTier.PRIVILEGED if privileged else RiskTier.STANDARD,
            state=IdentityState.REVOKED if number == 4 else IdentityState.OWNED,
            review_due_at=future if number == 8 else past,
        )
        if privileged and number not in (4, 8):
            expected.append(identity.id)
    session.commit()
    earlier = start_campaign(
        session, actor=ADMIN, settings=app.settings, tier=RiskTier.STANDARD
    )
    session.commit()

    campaign = start_campaign(
        session, actor=ADMIN, settings=app.settings, tier=RiskTier.PRIVILEGED
    )
    session.commit()
    reviewed = session.scalars(
        sa.select(Review.identity_id)
        .where(Review.campaign_id == campaign.id)
        .order_by(Review.identity_id)
    ).all()
    assert reviewed == expected
    assert campaign_counts(session, earlier).total == 6
    tiers = session.scalars(
        sa.select(Review.evidence).where(Review.campaign_id == campaign.id)
    ).all()
    assert {evidence["tier"] for evidence in tiers} == {"privileged"}
    assert verify_database(session).ok


def _review_of(session: Session, identity: Identity) -> Review:
    return session.scalars(
        sa.select(Review).where(Review.identity_id == identity.id)
    ).one()


def test_certify_extends_cycle(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    review = _review_of(session, inventory["due"])
    outcome = decide_review(
        session,
        review.id,
        active=True,
        minimal=True,
        actor=ALICE,
        settings=app.settings,
    )
    session.commit()
    assert outcome.created
    identity = session.get_one(Identity, inventory["due"].id)
    assert identity.state is IdentityState.OWNED
    assert identity.certified_until is not None
    assert (identity.certified_until - utcnow()).days in (364, 365)
    assert identity.review_due_at == identity.certified_until
    assert outcome.review.decision is Decision.CERTIFY

    again = decide_review(
        session,
        review.id,
        active=False,
        minimal=False,
        actor=ALICE,
        settings=app.settings,
    )
    assert not again.created
    assert again.review.decision is Decision.CERTIFY


def test_not_active_queues_revocation(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    review = _review_of(session, inventory["due"])
    decide_review(
        session,
        review.id,
        active=False,
        minimal=True,
        actor=ALICE,
        settings=app.settings,
        comment="app retired in June",
    )
    session.commit()
    identity = session.get_one(Identity, inventory["due"].id)
    assert identity.state is IdentityState.REVOCATION_PENDING
    kinds = {
        r.kind: r
        for r in session.scalars(
            sa.select(Remediation).where(Remediation.review_id == review.id)
        )
    }
    assert kinds[RemediationKind.REVOKE].status is RemediationStatus.PENDING
    assert kinds[RemediationKind.TICKET].status is RemediationStatus.PENDING


def test_privileged_revocation_waits(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    review = _review_of(session, inventory["privileged"])
    decide_review(
        session,
        review.id,
        active=False,
        minimal=False,
        actor=ALICE,
        settings=app.settings,
    )
    session.commit()
    identity = session.get_one(Identity, inventory["privileged"].id)
    assert identity.state is IdentityState.REVOCATION_APPROVAL
    revoke = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
    ).one()
    assert revoke.status is RemediationStatus.AWAITING_APPROVAL


def test_reduce_scope_has_deadline(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    review = _review_of(session, inventory["due"])
    decide_review(
        session,
        review.id,
        active=True,
        minimal=False,
        actor=ALICE,
        settings=app.settings,
    )
    session.commit()
    identity = session.get_one(Identity, inventory["due"].id)
    assert identity.state is IdentityState.SCOPE_REDUCTION_PENDING
    reduction = session.scalars(
        sa.select(Remediation).where(
            Remediation.kind == RemediationKind.SCOPE_REDUCTION
        )
    ).one()
    assert reduction.status is RemediationStatus.OPEN
    assert reduction.deadline is not None
    assert (reduction.deadline - utcnow()).days in (29, 30)


def test_who_may_decide(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    make_person(session, "mallory@example.com")
    session.commit()
    start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    review = _review_of(session, inventory["due"])
    with pytest.raises(
        PermissionDeniedError, match="only the reviewer, a backup owner"
    ):
        decide_review(
            session,
            review.id,
            active=True,
            minimal=True,
            actor=Actor.person("mallory@example.com"),
            settings=app.settings,
        )
    session.rollback()
    assert _review_of(session, inventory["due"]).status is ReviewStatus.PENDING
    # The backup owner may.
    outcome = decide_review(
        session,
        review.id,
        active=True,
        minimal=True,
        actor=Actor.person("bob@example.com"),
        settings=app.settings,
    )
    assert outcome.created
    session.commit()
    # A security admin may decide another one, an orphan only by revoking.
    orphan_review = _review_of(session, inventory["orphan"])
    with pytest.raises(ConflictError, match="must be claimed"):
        decide_review(
            session,
            orphan_review.id,
            active=True,
            minimal=True,
            actor=ADMIN,
            settings=app.settings,
        )
    session.rollback()
    revoked = decide_review(
        session,
        orphan_review.id,
        active=False,
        minimal=False,
        actor=ADMIN,
        settings=app.settings,
    )
    assert revoked.review.decision is Decision.REVOKE


def test_close_expires_unanswered(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    decide_review(
        session,
        _review_of(session, inventory["due"]).id,
        active=True,
        minimal=True,
        actor=ALICE,
        settings=app.settings,
    )
    session.commit()
    with time_machine.travel(utcnow() + timedelta(days=20), tick=False):
        expired = close_campaign(session, campaign, actor=ADMIN, settings=app.settings)
        session.commit()
    assert expired == 3
    privileged = session.get_one(Identity, inventory["privileged"].id)
    assert privileged.state is IdentityState.OWNED
    assert privileged.certified_until is None
    assert privileged.review_due_at is not None
    assert privileged.review_due_at < utcnow()
    statuses = {r.identity_id: r.status for r in session.scalars(sa.select(Review))}
    assert statuses[inventory["privileged"].id] is ReviewStatus.EXPIRED
    assert statuses[inventory["due"].id] is ReviewStatus.DECIDED
    escalations = session.scalars(
        sa.select(Remediation).where(Remediation.reason == "review_expired")
    ).all()
    assert len(escalations) == 3
    with pytest.raises(ConflictError, match="already closed"):
        close_campaign(session, campaign, actor=ADMIN, settings=app.settings)
    # Expired reviews can no longer be decided, and the identity is due again.
    expired_review = _review_of(session, inventory["privileged"])
    with pytest.raises(ConflictError, match="expired"):
        decide_review(
            session,
            expired_review.id,
            active=True,
            minimal=True,
            actor=ADMIN,
            settings=app.settings,
        )
    session.rollback()
    again = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    assert campaign_counts(session, again).total == 3


def test_campaign_report_rows(
    app: Steward, session: Session, inventory: dict[str, Identity]
) -> None:
    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    decide_review(
        session,
        _review_of(session, inventory["due"]).id,
        active=False,
        minimal=True,
        actor=ALICE,
        settings=app.settings,
    )
    session.commit()
    rows = {row["identity_id"]: row for row in campaign_report(session, campaign)}
    due = rows[inventory["due"].id]
    assert due["reviewer"] == "alice@example.com"
    assert due["decision"] == "revoke"
    assert due["decided_by"] == "alice@example.com"
    assert due["remediation"] == "revoke:pending, ticket:pending"
    assert due["evidence"]["name"] == "due"
    assert rows[inventory["orphan"].id]["reviewer"] == "security team"
    events = session.scalars(sa.select(AuditEvent.action)).all()
    assert events.count("review.decided") == 1


def test_report_csv_neutralises_formulas(
    app: Steward, database_url: str, session: Session, inventory: dict[str, Identity]
) -> None:
    campaign = start_campaign(session, actor=ADMIN, settings=app.settings)
    session.commit()
    decide_review(
        session,
        _review_of(session, inventory["due"]).id,
        active=True,
        minimal=True,
        actor=ALICE,
        settings=app.settings,
        comment="=cmd|' /C calc'!A0",
    )
    session.commit()
    result = CliRunner().invoke(
        cli,
        ["campaign", "report", str(campaign.id), "--format", "csv"],
        env={"STEWARD_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0
    assert "'=cmd|' /C calc'!A0" in result.output
    assert ",=cmd" not in result.output
