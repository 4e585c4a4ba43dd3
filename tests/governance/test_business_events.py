"""Business events: deprovisioning once, shared identities, approvals."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.business_event.models import EventStatus, EventType
from governance.business_event.service import decide_event, find_event, receive_event
from governance.cli.main import cli
from governance.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from tests.factories import make_identity, make_person

ITSM = Actor.person("itsm@example.com")
ADMIN = Actor.person("security@example.com")


def entity(session: Session, entity_type: EntityType, key: str) -> BusinessEntity:
    item = BusinessEntity(type=entity_type, key=key, name=key.title())
    session.add(item)
    session.flush()
    return item


@pytest.fixture
def project(session: Session) -> BusinessEntity:
    alice = make_person(session, "alice@example.com")
    apollo = entity(session, EntityType.PROJECT, "apollo")
    crm = entity(session, EntityType.APPLICATION, "crm")
    for number in range(3):
        identity = make_identity(session, owner=alice, name=f"apollo-{number}")
        identity.entities.append(apollo)
    shared = make_identity(session, owner=alice, name="shared")
    shared.entities.extend([apollo, crm])
    gone = make_identity(session, state=IdentityState.GONE, name="old")
    gone.entities.append(apollo)
    session.commit()
    return apollo


def states(session: Session) -> dict[str, IdentityState]:
    return {row.name: row.state for row in session.scalars(sa.select(Identity))}


def test_event_deprovisions_once(
    app: Steward, session: Session, project: BusinessEntity
) -> None:
    outcome = receive_event(
        session,
        event_id="CHG0001",
        event_type=EventType.PROJECT_CLOSED,
        key="apollo",
        actor=ITSM,
        settings=app.settings,
    )
    session.commit()
    assert not outcome.duplicate
    assert outcome.event.status is EventStatus.APPLIED
    assert (outcome.event.revoke_count, outcome.event.kept_count) == (3, 1)
    assert project.status is EntityStatus.CLOSED
    current = states(session)
    assert [current[f"apollo-{n}"] for n in range(3)] == [
        IdentityState.REVOCATION_PENDING
    ] * 3
    assert current["shared"] is IdentityState.OWNED
    assert current["old"] is IdentityState.GONE
    revocations = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.REVOKE)
    ).all()
    assert len(revocations) == 3
    assert {r.status for r in revocations} == {RemediationStatus.PENDING}
    ask = session.scalars(
        sa.select(Remediation).where(Remediation.kind == RemediationKind.NOTIFY)
    ).one()
    assert ask.payload["recipient"] == "alice@example.com"
    assert ask.payload["context"]["still_linked"] == ["application:crm"]

    events_before = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    again = receive_event(
        session,
        event_id="CHG0001",
        event_type=EventType.PROJECT_CLOSED,
        key="apollo",
        actor=ITSM,
        settings=app.settings,
    )
    session.commit()
    assert again.duplicate
    # Three revocations, their three tickets and one question to the owner.
    assert session.scalar(sa.select(sa.func.count()).select_from(Remediation)) == 7
    assert (
        session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        == events_before
    )

    with pytest.raises(ConflictError, match="already used"):
        receive_event(
            session,
            event_id="CHG0001",
            event_type=EventType.VENDOR_OFFBOARDED,
            key="apollo",
            actor=ITSM,
            settings=app.settings,
        )


def test_unknown_entity_changes_nothing(
    app: Steward, session: Session, project: BusinessEntity
) -> None:
    with pytest.raises(NotFoundError, match="project not found: 'hermes'"):
        receive_event(
            session,
            event_id="CHG0002",
            event_type=EventType.PROJECT_CLOSED,
            key="hermes",
            actor=ITSM,
            settings=app.settings,
        )
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Remediation)) == 0


def test_privileged_event_waits_for_approval(
    app: Steward, session: Session, project: BusinessEntity
) -> None:
    privileged = session.scalars(
        sa.select(Identity).where(Identity.name == "apollo-0")
    ).one()
    privileged.tier = RiskTier.PRIVILEGED
    session.commit()
    outcome = receive_event(
        session,
        event_id="CHG0003",
        event_type=EventType.PROJECT_CLOSED,
        key="apollo",
        actor=ITSM,
        settings=app.settings,
    )
    session.commit()
    assert outcome.event.status is EventStatus.AWAITING_APPROVAL
    assert {states(session)[f"apollo-{n}"] for n in range(3)} == {
        IdentityState.REVOCATION_APPROVAL
    }

    with pytest.raises(PermissionDeniedError):
        decide_event(
            session, outcome.event, approve=True, actor=ITSM, settings=app.settings
        )
    session.rollback()
    count = decide_event(
        session,
        find_event(session, "CHG0003"),
        approve=True,
        actor=ADMIN,
        settings=app.settings,
    )
    session.commit()
    assert count == 3
    assert {states(session)[f"apollo-{n}"] for n in range(3)} == {
        IdentityState.REVOCATION_PENDING
    }
    statuses = set(
        session.scalars(
            sa.select(Remediation.status).where(
                Remediation.kind == RemediationKind.REVOKE
            )
        )
    )
    assert statuses == {RemediationStatus.PENDING}


def test_rejected_event_restores_identities(
    app: Steward, session: Session, project: BusinessEntity
) -> None:
    settings = app.settings.model_copy(
        update={
            "guards": app.settings.guards.model_copy(
                update={"lifecycle_approval_threshold": 2}
            )
        }
    )
    outcome = receive_event(
        session,
        event_id="CHG0004",
        event_type=EventType.PROJECT_CLOSED,
        key="apollo",
        actor=ITSM,
        settings=settings,
    )
    session.commit()
    assert outcome.event.status is EventStatus.AWAITING_APPROVAL
    decide_event(session, outcome.event, approve=False, actor=ADMIN, settings=settings)
    session.commit()
    assert outcome.event.status is EventStatus.REJECTED
    assert {states(session)[f"apollo-{n}"] for n in range(3)} == {IdentityState.OWNED}


def test_event_cli(
    database_url: str, session: Session, project: BusinessEntity
) -> None:
    session.close()
    runner = CliRunner()
    env = {"STEWARD_DATABASE_URL": database_url, "STEWARD_ACTOR": "itsm@example.com"}
    first = runner.invoke(
        cli, ["event", "project.closed", "apollo", "--id", "CHG9"], env=env
    )
    assert first.exit_code == 0, first.output
    assert "3 identities to revoke, 1 kept" in first.output
    second = runner.invoke(
        cli, ["event", "project.closed", "apollo", "--id", "CHG9"], env=env
    )
    assert "already received" in second.output
    remediations = session.scalar(sa.select(sa.func.count()).select_from(Remediation))
    session.rollback()
    another = runner.invoke(
        cli, ["event", "project.closed", "apollo", "--id", "CHG10"], env=env
    )
    assert another.exit_code == 0, another.output
    assert "project apollo was already closed, so nothing was queued" in (
        another.output
    )
    assert "identities to revoke" not in another.output
    assert (
        session.scalar(sa.select(sa.func.count()).select_from(Remediation))
        == remediations
    )
    recorded = find_event(session, "CHG10")
    assert recorded.details == {"already_closed_by": "CHG9"}
    assert recorded.revoke_count == 0
    session.rollback()
    unknown = runner.invoke(
        cli, ["event", "vendor.offboarded", "nobody", "--id", "X"], env=env
    )
    assert unknown.exit_code == 2
    assert "vendor not found: 'nobody'" in unknown.output
    bad_type = runner.invoke(cli, ["event", "team.closed", "x", "--id", "Y"], env=env)
    assert bad_type.exit_code == 2


def test_event_time_parsed(
    database_url: str, session: Session, project: BusinessEntity
) -> None:
    session.close()
    runner = CliRunner()
    env = {"STEWARD_DATABASE_URL": database_url, "STEWARD_ACTOR": "itsm@example.com"}
    future = runner.invoke(
        cli,
        ["event", "project.closed", "apollo", "--id", "F1", "--at", "2999-01-01"],
        env=env,
    )
    assert future.exit_code == 2
    assert "is in the future" in future.output
    zoned = runner.invoke(
        cli,
        [
            "event",
            "project.closed",
            "apollo",
            "--id",
            "Z1",
            "--at",
            "2026-01-05T10:00:00+02:00",
        ],
        env=env,
    )
    assert zoned.exit_code == 0, zoned.output
    with Session(bind=session.get_bind()) as fresh:
        stored = find_event(fresh, "Z1")
        assert stored.occurred_at.hour == 8


def test_event_id_fits_dedupe_keys(
    app: Steward, session: Session, project: BusinessEntity
) -> None:
    # The outbox rows' dedupe keys embed the event id, and on PostgreSQL a
    # key longer than its column fails the insert.
    with pytest.raises(InvalidInputError, match="expected 1 to 160 characters"):
        receive_event(
            session,
            event_id="x" * 161,
            event_type=EventType.PROJECT_CLOSED,
            key="apollo",
            actor=ITSM,
            settings=app.settings,
        )
    outcome = receive_event(
        session,
        event_id="x" * 160,
        event_type=EventType.PROJECT_CLOSED,
        key="apollo",
        actor=ITSM,
        settings=app.settings,
    )
    session.commit()
    assert (outcome.event.revoke_count, outcome.event.kept_count) == (3, 1)
