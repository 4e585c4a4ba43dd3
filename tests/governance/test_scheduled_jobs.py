"""Planned campaigns, scope reduction deadlines, claims and the audit head."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.publish import interval_start, publish_audit_head
from governance.audit.service import Actor, read_head
from governance.campaign.models import Campaign, Review
from governance.campaign.planning import lookahead_days, plan_certifications
from governance.campaign.schedule import first_review_due
from governance.campaign.service import start_campaign
from governance.identity.models import RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.deadlines import check_scope_reductions
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.service import open_scope_reduction
from tests.factories import make_identity, make_person
from tests.support.timeline import T0, at, day

ADMIN = Actor.person("security@example.com")
SYSTEM = Actor.system("scheduler")


def _campaign_members(app: Steward) -> dict[int, tuple[RiskTier | None, set[int]]]:
    """Return campaign id -> (tier, identity ids reviewed in it)."""
    members: dict[int, tuple[RiskTier | None, set[int]]] = {}
    with app.session() as session:
        for campaign in session.scalars(sa.select(Campaign).order_by(Campaign.id)):
            ids = set(
                session.scalars(
                    sa.select(Review.identity_id).where(
                        Review.campaign_id == campaign.id
                    )
                )
            )
            members[campaign.id] = (campaign.tier, ids)
    return members


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


def test_plan_opens_campaign_per_tier(app: Steward, session: Session) -> None:
    alice = make_person(session, "alice@example.com")
    bob = make_person(session, "bob@example.com")
    with at(T0):
        privileged_soon = make_identity(
            session, owner=alice, tier=RiskTier.PRIVILEGED, review_due_at=day(13)
        )
        standard_overdue = make_identity(session, owner=alice, review_due_at=day(-3))
        standard_bob = make_identity(session, owner=bob, review_due_at=day(1))
        make_identity(session, owner=bob, review_due_at=day(15))
        make_identity(
            session,
            owner=bob,
            review_due_at=day(-1),
            state=IdentityState.REVOCATION_PENDING,
        )
        in_review = make_identity(session, owner=bob, review_due_at=day(-5), source="x")
        session.commit()
        start_campaign(session, actor=ADMIN, settings=app.settings, source="x")
        session.commit()

        assert lookahead_days(app) == 14
        opened = plan_certifications(app, actor=SYSTEM)

    members = _campaign_members(app)
    assert len(opened) == 2
    assert members[opened[0]] == (RiskTier.PRIVILEGED, {privileged_soon.id})
    assert members[opened[1]] == (
        RiskTier.STANDARD,
        {standard_overdue.id, standard_bob.id},
    )
    # The identity already in the earlier campaign stays only there.
    assert sum(in_review.id in ids for _, ids in members.values()) == 1

    requests = {
        (row.payload["context"]["campaign_id"], row.payload["recipient"])
        for row in _messages(app, "review_request")
    }
    assert (opened[0], "alice@example.com") in requests
    assert (opened[1], "alice@example.com") in requests
    assert (opened[1], "bob@example.com") in requests
    assert (opened[0], "bob@example.com") not in requests

    # Running again at once opens nothing.
    with at(T0 + timedelta(minutes=1)):
        assert plan_certifications(app, actor=SYSTEM) == []
    assert len(_campaign_members(app)) == 3


def test_plan_spreads_backlog(app: Steward, session: Session) -> None:
    owner = make_person(session, "owner@example.com")
    review = app.settings.review
    due_dates: dict[int, object] = {}
    with at(T0):
        for number in range(300):
            external_id = f"backlog-{number}"
            due = first_review_due(T0, RiskTier.STANDARD, external_id, review)
            identity = make_identity(
                session, owner=owner, external_id=external_id, review_due_at=due
            )
            due_dates[identity.id] = due
        session.commit()
        first = plan_certifications(app, actor=SYSTEM)
    with at(day(30)):
        second = plan_certifications(app, actor=SYSTEM)

    members = _campaign_members(app)
    [first_id], [second_id] = first, second
    expected_first = {key for key, due in due_dates.items() if due <= day(14)}
    expected_second = {
        key for key, due in due_dates.items() if day(14) < due <= day(44)
    }
    assert members[first_id][1] == expected_first
    assert members[second_id][1] == expected_second
    # Spread across the cycle: each campaign contains a small share of the backlog.
    assert 0 < len(expected_first) < 40
    assert 0 < len(expected_second) < 60


def test_plan_lookahead_setting(app: Steward, session: Session) -> None:
    settings = app.settings.model_copy(
        update={
            "scheduler": app.settings.scheduler.model_copy(
                update={"certification_lookahead_days": 30}
            )
        }
    )
    wide = Steward(settings=settings, engine=app.engine, sessions=app.sessions)
    owner = make_person(session)
    with at(T0):
        later = make_identity(session, owner=owner, review_due_at=day(25))
        session.commit()
        assert plan_certifications(app, actor=SYSTEM) == []
        [opened] = plan_certifications(wide, actor=SYSTEM)
    assert _campaign_members(app)[opened][1] == {later.id}


def _scope_reduction(app: Steward, session: Session, owner_email: str) -> int:
    owner = make_person(session, owner_email)
    identity = make_identity(session, owner=owner)
    remediation = open_scope_reduction(
        session,
        identity,
        actor=ADMIN,
        reason="review: reduce_scope",
        deadline_days=app.settings.review.scope_reduction_deadline_days,
    )
    session.commit()
    return remediation.id


def test_scope_reduction_notices(app: Steward, session: Session) -> None:
    with at(T0):
        reduction = _scope_reduction(app, session, "owner@example.com")
    assert app.settings.scheduler.scope_reduction_notice_days == 3

    with at(day(26.9)):
        assert check_scope_reductions(app, actor=SYSTEM) == 0
    with at(day(27)):
        assert check_scope_reductions(app, actor=SYSTEM) == 1
        assert check_scope_reductions(app, actor=SYSTEM) == 0
    [due] = _messages(app, "scope_reduction_due")
    assert due.payload["recipient"] == "owner@example.com"
    assert due.payload["context"] == {"remediation_id": reduction}

    with at(day(29.9)):
        assert check_scope_reductions(app, actor=SYSTEM) == 0
    with at(day(30)):
        assert check_scope_reductions(app, actor=SYSTEM) == 2
    with at(day(40)):
        assert check_scope_reductions(app, actor=SYSTEM) == 0
    overdue = _messages(app, "scope_reduction_overdue")
    assert [row.payload["recipient"] for row in overdue] == ["owner@example.com", None]
    assert len(_messages(app, "scope_reduction_due")) == 1


def test_scope_reduction_late_or_done(app: Steward, session: Session) -> None:
    with at(T0):
        late = _scope_reduction(app, session, "late@example.com")
        done = _scope_reduction(app, session, "done@example.com")
        row = session.get_one(Remediation, done)
        row.status = RemediationStatus.SUCCEEDED
        session.commit()
    # First checked after the deadline: the overdue notices only.
    with at(day(31)):
        assert check_scope_reductions(app, actor=SYSTEM) == 2
    assert _messages(app, "scope_reduction_due") == []
    overdue = _messages(app, "scope_reduction_overdue")
    assert {row.payload["context"]["remediation_id"] for row in overdue} == {late}


def test_audit_head_logged_and_queued(
    app: Steward, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    interval = timedelta(hours=24)
    with at(T0):
        start_campaign(session, actor=ADMIN, settings=app.settings)
        session.commit()
        with app.session() as reading:
            expected = read_head(reading)
        assert expected.seq > 0
        with caplog.at_level(logging.INFO, logger="governance.audit.publish"):
            head = publish_audit_head(app, actor=SYSTEM, interval=interval)
    assert head == expected
    assert f"seq {expected.seq} hash {expected.hash}" in caplog.text

    [message] = _messages(app, "audit_head")
    assert message.payload["recipient"] is None
    assert message.payload["context"] == {
        "seq": expected.seq,
        "hash": expected.hash,
        "at": T0.isoformat(),
    }
    # Again within the same interval: no second message.
    with at(T0 + timedelta(hours=5)):
        publish_audit_head(app, actor=SYSTEM, interval=interval)
    assert len(_messages(app, "audit_head")) == 1
    with at(T0 + timedelta(hours=24)):
        publish_audit_head(app, actor=SYSTEM, interval=interval)
    assert len(_messages(app, "audit_head")) == 2


def test_interval_start_alignment() -> None:
    hour = timedelta(hours=1)
    assert interval_start(T0 + timedelta(minutes=59), hour) == T0
    assert interval_start(T0 + hour, hour) == T0 + hour
    assert interval_start(T0, timedelta(days=1)) == T0.replace(hour=0)
